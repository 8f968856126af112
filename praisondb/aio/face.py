"""How an async face is made from a sync class: each method is the sync one, bridged.

``create = awaited(Sessions.create)`` makes ``await faces.create(...)`` run
``Sessions.create`` through the bridge. The signature, defaults and docstring are the sync
method's own (``functools.wraps``; mypy sees the same parameters through ``ParamSpec``), so
there is nothing to keep in step by hand and no second copy of any logic.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from typing import Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar

S = TypeVar("S")
T = TypeVar("T")
F = TypeVar("F")
P = ParamSpec("P")

CHUNK = 256
"""Items an async iterator takes from the sync one per trip through the bridge: the sync
iterators page from the store already, so most items cost no I/O, and one trip per item
would cost a greenlet switch each."""


class Runner(Protocol):
    """Runs a sync core call off the loop (``AsyncPraisonDB`` is one)."""

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T: ...


class Face(Generic[S]):
    """An async face: ``sync`` is the core object every call is delegated to."""

    __slots__ = ("_runner", "_sync")

    def __init__(self, sync: S, runner: Runner) -> None:
        self._sync = sync
        self._runner = runner

    @property
    def sync(self) -> S:
        """The sync object behind this face, for code that runs inside ``db.run_sync``."""
        return self._sync

    def __repr__(self) -> str:
        return f"<async {self._sync!r}>"


Method = Callable[Concatenate[Face[Any], P], Coroutine[Any, Any, T]]


def awaited(fn: Callable[Concatenate[Any, P], T]) -> Method[P, T]:
    """The sync method ``fn``, awaited: run through the bridge."""

    @functools.wraps(fn)
    async def method(self: Face[Any], /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._runner.run(fn, self._sync, *args, **kwargs)

    return method


def returning(
    face: Callable[[Any, Runner], F], fn: Callable[Concatenate[Any, P], Any]
) -> Method[P, F]:
    """Like :func:`awaited`, for a method that hands out an object with an async face
    of its own (a ``Session`` becomes an ``AsyncSession``)."""

    @functools.wraps(fn)
    async def method(self: Face[Any], /, *args: P.args, **kwargs: P.kwargs) -> F:
        return face(await self._runner.run(fn, self._sync, *args, **kwargs), self._runner)

    return method


def returning_optional(
    face: Callable[[Any, Runner], F], fn: Callable[Concatenate[Any, P], Any]
) -> Method[P, F | None]:
    """:func:`returning` for a method that may return None."""

    @functools.wraps(fn)
    async def method(self: Face[Any], /, *args: P.args, **kwargs: P.kwargs) -> F | None:
        found = await self._runner.run(fn, self._sync, *args, **kwargs)
        return None if found is None else face(found, self._runner)

    return method


def iterated(
    fn: Callable[Concatenate[Any, P], Iterable[T]],
) -> Callable[Concatenate[Face[Any], P], AsyncIterator[T]]:
    """The sync iterator method ``fn`` as an async iterator, a chunk per trip."""

    @functools.wraps(fn)
    def method(self: Face[Any], /, *args: P.args, **kwargs: P.kwargs) -> AsyncIterator[T]:
        return iterate(self._runner, fn, self._sync, *args, **kwargs)

    return method


def direct(fn: Callable[Concatenate[Any, P], T]) -> Callable[Concatenate[Face[Any], P], T]:
    """A sync method that does no I/O (signing a token), called as it is."""

    @functools.wraps(fn)
    def method(self: Face[Any], /, *args: P.args, **kwargs: P.kwargs) -> T:
        return fn(self._sync, *args, **kwargs)

    return method


def iterate(
    runner: Runner, fn: Callable[..., Iterable[T]], *args: Any, **kwargs: Any
) -> AsyncIterator[T]:
    """``fn(*args, **kwargs)``'s items as an async iterator, fetched a chunk per trip."""

    async def items() -> AsyncIterator[T]:
        source = iter(await runner.run(fn, *args, **kwargs))
        while True:
            chunk = await runner.run(lambda: list(itertools.islice(source, CHUNK)))
            for item in chunk:
                yield item
            if len(chunk) < CHUNK:
                return

    return items()


__all__ = [
    "CHUNK",
    "Face",
    "Runner",
    "awaited",
    "direct",
    "iterate",
    "iterated",
    "returning",
    "returning_optional",
]
