"""Bulk decoding without the cyclic garbage collector's pauses."""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_holders = 0
"""Blocks in progress, in every thread; the collector resumes when the last one ends."""
_paused = False
"""Whether the first of them switched the collector off (it was on)."""


@contextlib.contextmanager
def no_gc_pauses() -> Iterator[None]:
    """Hold off the cyclic garbage collector while decoding a bulk read.

    Every message decoded is a few new containers (the message, its metadata, its
    content blocks) that all survive, so a 10,000-message load triggers dozens of young
    collections and a full one over everything the process holds: measured on a
    process with an agent framework imported (~220k objects), 60-70% of a load's time
    (PostgreSQL 419 ms, 133 ms without). Nothing decoded here can form a cycle, and
    collection resumes when the last such block of any thread ends (if it was on: a
    caller's own ``gc.disable()`` is kept), so overlapping loads in several threads
    never switch it back on under one another."""
    global _holders, _paused
    with _lock:
        if not _holders:
            _paused = gc.isenabled()
            if _paused:
                gc.disable()
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if not _holders and _paused:
                gc.enable()
