"""What every generated async face stands on: the sync object and the runner."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, Generic, Protocol, TypeVar

S = TypeVar("S")
T = TypeVar("T")

CHUNK = 256
"""Items an async iterator takes from the sync one per trip through the bridge: the sync
iterators page from the store already, so most items cost no I/O, and one trip per item
would cost a task switch each."""


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


def _sync(value: Any) -> Any:
    """The sync object behind an async face argument (an ``AsyncSession`` to merge)."""
    return value._sync if isinstance(value, Face) else value


__all__ = ["CHUNK", "Face", "Runner", "iterate"]
