"""Client-generated, time-ordered identifiers (UUIDv7, RFC 9562).

Ids are made by the client, not the store, so a copy between stores keeps them;
time order keeps B-tree inserts at the right edge of the index.
"""

from __future__ import annotations

import os
import threading
import time

_lock = threading.Lock()
_last_ms = 0
_counter = 0
_POOL_SIZE = 4096
_pool = b""
_pos = 0


def _reset_after_fork() -> None:
    """A child must never hand out random bits its parent also hands out."""
    global _pool, _pos
    _pool, _pos = b"", 0


os.register_at_fork(after_in_child=_reset_after_fork)


def new_id() -> str:
    """A UUIDv7 string, strictly increasing within this process."""
    global _last_ms, _counter, _pool, _pos
    with _lock:
        if _pos + 10 > len(_pool):  # one urandom call per ~400 ids
            _pool, _pos = os.urandom(_POOL_SIZE), 0
        rand = int.from_bytes(_pool[_pos : _pos + 10], "big")
        _pos += 10
        ms = time.time_ns() // 1_000_000
        if ms > _last_ms:
            _last_ms, _counter = ms, rand & 0x3FF
        else:  # same millisecond (or the clock stepped back): count up, borrow time if needed
            _counter += 1
            if _counter > 0xFFF:
                _last_ms, _counter = _last_ms + 1, 0
            ms = _last_ms
        counter = _counter
    value = (ms << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | (rand >> 18)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
