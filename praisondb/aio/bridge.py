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

Either way the call runs in the caller's own task: no extra task, no extra trip round
the loop, and a caller cancelled mid-call has the cancellation thrown into the core at the
point it waits, so the core unwinds (rolls back, hands its connection back) before the
cancellation goes on up. :meth:`Bridge.close` cancels the calls still in flight the same
way and their callers get :class:`~praisondb.errors.DatabaseClosed` instead of waiting on
a closed pool. A worker thread cannot be interrupted: its cancelled call stops at its next
wait (``clock.pause``), and the caller waits for the thread to finish (as anyio's
``to_thread`` does), so a cancelled write is settled, whole or absent, when the
cancellation goes on, and never lands after it.
"""

from __future__ import annotations

import abc
import asyncio
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from .. import clock
from ..errors import ConfigError, DatabaseClosed

P = ParamSpec("P")
T = TypeVar("T")

CLOSE_GRACE = 5.0
"""Seconds :meth:`Bridge.close` lets cancelled calls unwind (roll back) before it returns."""


class _Call:
    """One call in flight: its caller's task, and whether close() is what cancelled it."""

    __slots__ = ("closed", "done", "task")

    def __init__(self, task: asyncio.Task[Any] | None) -> None:
        self.task = task
        self.closed = False
        self.done = asyncio.get_running_loop().create_future()


class Bridge(abc.ABC):
    """Runs synchronous core calls for coroutines; tracks them so close can end them."""

    def __init__(self) -> None:
        self._inflight: set[_Call] = set()
        self._closed = False

    @abc.abstractmethod
    async def _call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` (already bound to its arguments) in the caller's task."""

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` without blocking the loop."""
        if self._closed:
            raise DatabaseClosed("this AsyncPraisonDB is closed; open a new one")
        call = _Call(asyncio.current_task())
        self._inflight.add(call)
        try:
            return await self._call(functools.partial(fn, *args, **kwargs))
        except asyncio.CancelledError:
            if not call.closed:
                raise
            if call.task is not None and hasattr(call.task, "uncancel"):
                call.task.uncancel()  # the cancellation was ours, and it ends here
            raise DatabaseClosed(
                "the AsyncPraisonDB was closed while this call was in flight; whether a "
                "write in it landed is unknown until you read it back (message ids make "
                "re-sending safe)"
            ) from None
        finally:
            self._inflight.discard(call)
            call.done.set_result(None)

    async def stop(self) -> None:
        """Refuse new calls, fail the ones in flight, wait (briefly) for them to unwind."""
        self._closed = True
        pending = list(self._inflight)
        for call in pending:
            call.closed = True
            if call.task is not None:
                call.task.cancel()
        if pending:
            await asyncio.wait([c.done for c in pending], timeout=CLOSE_GRACE)

    async def finish(self, final: Callable[[], object]) -> None:
        """After :meth:`stop`: run ``final`` (the core's own close), then let go of what
        the bridge holds."""
        try:
            await self._call(final)
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
            import greenlet  # type: ignore[import-untyped]  # noqa: F401 - SQLAlchemy: late
            from sqlalchemy.util.concurrency import greenlet_spawn
        except ImportError as exc:  # greenlet comes with praisondb[async]
            raise ConfigError(
                f"the async face needs greenlet ({exc}); pip install 'praisondb[async]'"
            ) from None
        self._spawn = greenlet_spawn

    async def _call(self, fn: Callable[[], T]) -> T:
        turns: list[bool] = []
        turn = asyncio.get_running_loop().call_soon(turns.append, True)
        result: T = await self._spawn(fn)
        if not turns:  # no I/O (a memory store): the loop never ran, so give it a turn, or
            turn.cancel()  # a task awaiting such calls in a loop would starve all others
            await asyncio.sleep(0)
        return result


class ThreadBridge(Bridge):
    """Core calls on a small pool of worker threads (blocking file I/O and file locks)."""

    def __init__(self, workers: int = 8) -> None:
        super().__init__()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="praisondb-aio")

    async def _call(self, fn: Callable[[], T]) -> T:
        stop = threading.Event()
        running = self._pool.submit(clock.stoppable, stop, fn)
        result = asyncio.wrap_future(running)
        try:
            return await asyncio.shield(result)
        except asyncio.CancelledError:
            stop.set()  # its next wait (lock polling, retry backoff) ends the call
            if not running.cancel():  # started: a thread cannot be interrupted, so let it end
                await asyncio.wait({result})
                if not result.cancelled():
                    result.exception()  # seen: the call's own end is of no interest now
            raise

    def _shutdown(self) -> None:
        # A thread cannot be interrupted: a call already running finishes (whole or not
        # at all, as the store promises) while the pool shuts down without waiting.
        self._pool.shutdown(wait=False, cancel_futures=True)


__all__ = ["Bridge", "GreenletBridge", "ThreadBridge"]
