"""How the async face runs the one (synchronous) core without blocking the event loop.

Two ways, chosen per database by what its stores can do:

- :class:`GreenletBridge` runs a core call in a greenlet, the way SQLAlchemy's asyncio
  extension runs its sync ORM over async drivers (``greenlet_spawn``/``await_only``).
  The stores underneath hold native async clients (``redis.asyncio``, pymongo's
  ``AsyncMongoClient``, SQLAlchemy's async dialects): each time the core waits for the
  network, the greenlet hands the driver's awaitable to the loop, which serves other
  tasks meanwhile. The store logic, SQL, codecs and validation stay one implementation.
- :class:`ThreadBridge` runs a core call in a worker thread, for stores whose I/O is
  blocking by nature (the JSON file store's files and cross-process file locks).

Either way each call runs as its own task, so that :meth:`Bridge.close` can fail the
calls still in flight with :class:`~praisondb.errors.DatabaseClosed` instead of leaving
their callers waiting on a closed pool, and a caller cancelled mid-call still lets the
core unwind (roll back, hand its connection back) before the task ends.
"""

from __future__ import annotations

import abc
import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from ..errors import ConfigError, DatabaseClosed

P = ParamSpec("P")
T = TypeVar("T")

CLOSE_GRACE = 5.0
"""Seconds :meth:`Bridge.close` lets cancelled calls unwind (roll back) before it returns."""


class Bridge(abc.ABC):
    """Runs synchronous core calls for coroutines; tracks them so close can end them."""

    def __init__(self) -> None:
        self._inflight: set[asyncio.Future[Any]] = set()
        self._closed = False

    @abc.abstractmethod
    def _start(self, fn: Callable[[], T]) -> asyncio.Future[T]:
        """Begin running ``fn`` (already bound to its arguments)."""

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` without blocking the loop."""
        if self._closed:
            raise DatabaseClosed("this AsyncPraisonDB is closed; open a new one")
        task = asyncio.ensure_future(self._start(functools.partial(fn, *args, **kwargs)))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.cancelled() and self._closed:
                raise DatabaseClosed(
                    "the AsyncPraisonDB was closed while this call was in flight; whether "
                    "a write in it landed is unknown until you read it back (message ids "
                    "make re-sending safe)"
                ) from None
            # Our caller was cancelled: cancel the call too, and let it unwind (roll back,
            # return its connection) in its own task while the cancellation goes on up.
            task.cancel()
            raise

    async def close(self, final: Callable[[], object] | None = None) -> None:
        """Refuse new calls, fail the ones in flight, wait (briefly) for them to unwind,
        then run ``final`` (the core's own close: pools, analytics flush)."""
        self._closed = True
        pending = [t for t in self._inflight if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=CLOSE_GRACE)
        try:
            if final is not None:
                await self._start(final)
        finally:
            self._shutdown()

    def _shutdown(self) -> None:  # noqa: B027 - only the thread bridge holds anything
        """Release what the bridge itself holds (worker threads)."""

    @property
    def closed(self) -> bool:
        return self._closed


class GreenletBridge(Bridge):
    """Core calls in greenlets over native async drivers (SQLAlchemy's mechanism)."""

    def __init__(self) -> None:
        super().__init__()
        try:
            import greenlet  # noqa: F401 - SQLAlchemy imports it late, at the first call
            from sqlalchemy.util.concurrency import greenlet_spawn
        except ImportError as exc:  # greenlet comes with praisondb[async]
            raise ConfigError(
                f"the async face needs greenlet ({exc}); pip install 'praisondb[async]'"
            ) from None
        self._spawn = greenlet_spawn

    def _start(self, fn: Callable[[], T]) -> asyncio.Future[T]:
        return asyncio.ensure_future(self._spawn(fn))


class ThreadBridge(Bridge):
    """Core calls on a small pool of worker threads (blocking file I/O and file locks)."""

    def __init__(self, workers: int = 8) -> None:
        super().__init__()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="praisondb-aio")

    def _start(self, fn: Callable[[], T]) -> asyncio.Future[T]:
        return asyncio.get_running_loop().run_in_executor(self._pool, fn)

    def _shutdown(self) -> None:
        # A thread cannot be interrupted: a call already running finishes (whole or not
        # at all, as the store promises) while the pool shuts down without waiting.
        self._pool.shutdown(wait=False, cancel_futures=True)


__all__ = ["Bridge", "GreenletBridge", "ThreadBridge"]
