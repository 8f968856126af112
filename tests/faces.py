"""The faces the conformance suite runs against: sync, and async through a sync lens.

A test is written once, against the sync API. For the ``async`` face its ``db`` is a
:class:`SyncLens` over an :class:`~praisondb.aio.AsyncPraisonDB`: each call the test makes
becomes the awaited call of the async face, run on one event loop in a background thread
(:class:`LoopThread`). So the suite proves the async face with the same assertions, and
tests that call from many threads drive many concurrent tasks on that one loop.

What the async face has no method for (the store objects, ``StateView``'s mapping
dunders) is taken from its sync core and run through the async face's bridge, which is
what the async face itself does for every call.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import Future
from typing import Any, TypeVar

from praisondb.aio.face import Face

T = TypeVar("T")

FACES = ("sync", "async")


class Loop:
    """Runs coroutines on ``loop`` for code in other threads: :meth:`call` blocks until done."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def call(self, awaitable: Awaitable[T]) -> T:
        async def run() -> T:
            return await awaitable

        future: Future[T] = asyncio.run_coroutine_threadsafe(run(), self.loop)
        return future.result()


class LoopThread(Loop):
    """An event loop running in a daemon thread of its own."""

    def __init__(self) -> None:
        super().__init__(asyncio.new_event_loop())
        started = threading.Event()

        def main() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.call_soon(started.set)
            self.loop.run_forever()

        self._thread = threading.Thread(target=main, name="async-face-loop", daemon=True)
        self._thread.start()
        started.wait()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)


def _unlens(value: Any) -> Any:
    return value._target if isinstance(value, SyncLens) else value


class SyncLens:
    """The sync shape of an async face object (see the module docstring)."""

    __slots__ = ("_loop", "_runner", "_target")

    def __init__(self, target: Any, runner: Any, loop: Loop) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_runner", runner)
        object.__setattr__(self, "_loop", loop)

    @property
    def target(self) -> Any:
        """The async face object itself."""
        return self._target

    def _convert(self, value: Any) -> Any:
        if inspect.isawaitable(value):
            value = self._loop.call(value)
        if isinstance(value, Face) or _is_async_db(value):
            return SyncLens(value, self._runner, self._loop)
        if hasattr(value, "__anext__"):
            return self._pull(value)
        return value

    def _pull(self, iterator: AsyncIterator[Any]) -> Iterator[Any]:
        while True:
            try:
                item = self._loop.call(iterator.__anext__())
            except StopAsyncIteration:
                return
            yield self._convert(item)

    def _sync_object(self) -> Any:
        return self._target.sync

    def __getattr__(self, name: str) -> Any:
        target = self._target
        if hasattr(type(target), name) or name in getattr(target, "__dict__", {}):
            value = getattr(target, name)
            reads = isinstance(getattr(type(self._sync_object()), name, None), property)
            if reads and inspect.iscoroutinefunction(value):
                return self._convert(value())  # a property that reads: a method here
            if callable(value) and not isinstance(value, Face):
                return self._method(value)
            return self._convert(value)
        # Not on the async face: the sync core's attribute, reached through the bridge.
        found = self._loop.call(self._runner.run(getattr, self._sync_object(), name))
        return bridged(found, self._runner, self._loop)

    def _method(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            args = tuple(_unlens(a) for a in args)
            kwargs = {k: _unlens(v) for k, v in kwargs.items()}
            return self._convert(fn(*args, **kwargs))

        return call

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._target, name, value)

    def __repr__(self) -> str:
        return f"SyncLens({self._target!r})"

    # -- the protocols a test uses ------------------------------------------------------
    def __enter__(self) -> Any:
        entered = self._loop.call(self._target.__aenter__())
        return self if entered is self._target else self._convert(entered)

    def __exit__(self, *exc: Any) -> Any:
        return self._loop.call(self._target.__aexit__(*exc))

    def __iter__(self) -> Iterator[Any]:
        if hasattr(self._target, "__aiter__"):
            return self._pull(self._target.__aiter__())
        source = self._sync_object()
        items: list[Any] = self._loop.call(self._runner.run(lambda: list(source)))
        return iter(items)

    def __getitem__(self, key: Any) -> Any:
        return self._loop.call(self._runner.run(self._sync_object().__getitem__, key))

    def __setitem__(self, key: Any, value: Any) -> None:
        self._loop.call(self._runner.run(self._sync_object().__setitem__, key, value))

    def __delitem__(self, key: Any) -> None:
        self._loop.call(self._runner.run(self._sync_object().__delitem__, key))

    def __contains__(self, key: Any) -> bool:
        found: bool = self._loop.call(self._runner.run(self._sync_object().__contains__, key))
        return found

    def __len__(self) -> int:
        found: int = self._loop.call(self._runner.run(self._sync_object().__len__))
        return found


def _is_async_db(value: Any) -> bool:
    from praisondb.aio import AsyncPraisonDB

    return isinstance(value, AsyncPraisonDB)


class Bridged:
    """A sync core object (a store) whose every call runs through the async bridge."""

    __slots__ = ("_loop", "_runner", "_target")

    def __init__(self, target: Any, runner: Any, loop: Loop) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_runner", runner)
        object.__setattr__(self, "_loop", loop)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if not callable(value) or isinstance(value, type):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            def run() -> Any:
                result = value(*args, **kwargs)
                return list(result) if inspect.isgenerator(result) else result

            return self._loop.call(self._runner.run(run))

        return call

    def __repr__(self) -> str:
        return f"Bridged({self._target!r})"


def bridged(value: Any, runner: Any, loop: Loop) -> Any:
    """Plain values as they are; objects with methods (stores) behind the bridge."""
    if value is None or isinstance(value, (str, bytes, int, float, bool, dict, list, tuple)):
        return value
    return Bridged(value, runner, loop)


def lens(db: Any, loop: Loop) -> Any:
    """The sync lens over an ``AsyncPraisonDB``."""
    return SyncLens(db, db, loop)


def session_adapter(db: Any, **options: Any) -> Any:
    """A ``DbSessionAdapter`` of ``db``'s face: the async adapter through the lens."""
    if isinstance(db, SyncLens):
        from praisondb.aio import AsyncDbSessionAdapter

        return SyncLens(AsyncDbSessionAdapter(db.target, **options), db.target, db._loop)
    from praisondb import DbSessionAdapter

    return DbSessionAdapter(db, **options)


def url_session_adapter(face: str, loop: Loop, url: str, **options: Any) -> Any:
    """A ``DbSessionAdapter`` of this face that opens (and closes) its own database."""
    if face == "sync":
        from praisondb import DbSessionAdapter

        return DbSessionAdapter(url, **options)
    from praisondb.aio import AsyncDbSessionAdapter

    adapter = AsyncDbSessionAdapter(url, **options)
    return SyncLens(adapter, adapter.db, loop)


FACE_ENV = "PRAISONDB_TEST_FACE"
"""Names the face a multi-process worker (tests/conformance/_worker.py) runs on."""


def run_on_face(face: str, url: str, action: Callable[[Any], T], **options: Any) -> T:
    """``action(db)`` with ``db`` this face's database at ``url``, closed afterwards, for
    code outside pytest written once against the sync API (the multi-process workers).

    The async face runs under ``asyncio.run``: ``action`` runs on a worker thread and
    reaches the loop's AsyncPraisonDB through the lens."""
    if face == "sync":
        from praisondb import PraisonDB

        with PraisonDB(url, **options) as db:
            return action(db)
    from praisondb.aio import AsyncPraisonDB

    async def main() -> T:
        async with AsyncPraisonDB(url, **options) as db:
            here = Loop(asyncio.get_running_loop())
            return await asyncio.to_thread(action, lens(db, here))

    return asyncio.run(main())


__all__ = [
    "FACES",
    "FACE_ENV",
    "Bridged",
    "Loop",
    "LoopThread",
    "SyncLens",
    "lens",
    "run_on_face",
    "session_adapter",
    "url_session_adapter",
]
