"""The wall clock praisondb reads for expiry: state TTLs, lease deadlines, timestamps.

Every such reading goes through this module (``model.utcnow`` and the lease code call
``clock.time_ns`` by attribute), so a test can move time forward by replacing
``time_ns`` here instead of waiting for a TTL to lapse on the real clock.
"""

from __future__ import annotations

import sys
import threading
import time as _time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta, timezone
from typing import TypeVar

T = TypeVar("T")

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

_call = threading.local()
"""``stop``: the event that ends the async face's call running on this worker thread."""


_ahead: ContextVar[int] = ContextVar("praisondb_clock_ahead", default=0)
"""Nanoseconds this context's clock runs ahead of the real one (see :func:`running_ahead`)."""


def time_ns() -> int:
    """Nanoseconds since the epoch; the one primitive the rest derive from."""
    return _time.time_ns() + _ahead.get()


@contextmanager
def running_ahead(nanoseconds: int) -> Iterator[None]:
    """Within this context (and the worker threads it hands calls to) the clock reads
    ``nanoseconds`` later: ``praisondb serve`` follows a client whose clock is ahead, so
    TTLs and leases lapse for the server when they lapse for that client."""
    token = _ahead.set(max(0, nanoseconds))
    try:
        yield
    finally:
        _ahead.reset(token)


def time() -> float:
    """Seconds since the epoch, like :func:`time.time`."""
    return time_ns() / 1e9


def now() -> datetime:
    """Aware UTC now, with microseconds."""
    return EPOCH + timedelta(microseconds=time_ns() // 1_000)


def pause(seconds: float) -> None:
    """Wait ``seconds`` (retry backoff, lock polling).

    Inside the async face's greenlets this awaits ``asyncio.sleep`` instead, so one
    waiting call never stalls the event loop the other conversations run on. Either way a
    cancelled async call ends here with ``asyncio.CancelledError``: in a greenlet the loop
    delivers it; on a worker thread (:func:`stoppable`) the caller's stop event does.
    """
    if "greenlet" in sys.modules:  # only loaded when the async face (or SQLAlchemy's) runs
        from sqlalchemy.util.concurrency import await_only, in_greenlet

        if in_greenlet():
            import asyncio

            await_only(asyncio.sleep(seconds))
            return
    stop: threading.Event | None = getattr(_call, "stop", None)
    if stop is None:
        _time.sleep(seconds)
    elif stop.wait(seconds):
        import asyncio

        raise asyncio.CancelledError("the async call waiting here was cancelled")


def stoppable(stop: threading.Event, fn: Callable[[], T]) -> T:
    """``fn()`` on this thread, its waits (:func:`pause`) ended early once ``stop`` is set.

    A thread cannot be interrupted, so a cancelled async call on a worker thread would
    otherwise go on polling a lock or backing off, and take the lease or write the
    message after its caller gave up on it."""
    _call.stop = stop
    try:
        return fn()
    finally:
        _call.stop = None


__all__ = ["EPOCH", "now", "pause", "stoppable", "time", "time_ns"]
