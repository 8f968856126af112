"""The wall clock praisondb reads for expiry: state TTLs, lease deadlines, timestamps.

Every such reading goes through this module (``model.utcnow`` and the lease code call
``clock.time_ns`` by attribute), so a test can move time forward by replacing
``time_ns`` here instead of waiting for a TTL to lapse on the real clock.
"""

from __future__ import annotations

import sys
import time as _time
from datetime import datetime, timedelta, timezone

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def time_ns() -> int:
    """Nanoseconds since the epoch; the one primitive the rest derive from."""
    return _time.time_ns()


def time() -> float:
    """Seconds since the epoch, like :func:`time.time`."""
    return time_ns() / 1e9


def now() -> datetime:
    """Aware UTC now, with microseconds."""
    return EPOCH + timedelta(microseconds=time_ns() // 1_000)


def pause(seconds: float) -> None:
    """Wait ``seconds`` (retry backoff, lock polling).

    Inside the async face's greenlets this awaits ``asyncio.sleep`` instead, so one
    waiting call never stalls the event loop the other conversations run on.
    """
    if "greenlet" in sys.modules:  # only loaded when the async face (or SQLAlchemy's) runs
        from sqlalchemy.util.concurrency import await_only, in_greenlet

        if in_greenlet():
            import asyncio

            await_only(asyncio.sleep(seconds))
            return
    _time.sleep(seconds)


__all__ = ["EPOCH", "now", "pause", "time", "time_ns"]
