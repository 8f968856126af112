"""Rate limits shared by every server process on one state store.

A key's rate ``r`` (requests/s) is a budget per fixed wall-clock window: ``W`` = 1 s and
``floor(r)`` requests for ``r >= 1``, else ``W = ceil(1/r)`` s and one request. The
budget lives in a counter of the state store (``incr`` on one entry per key and window,
which expires shortly after its window), and each process **leases a slice** of it (about
an eighth of the budget) with one ``incr``, then spends the slice locally: a store write
per slice, not per request. A lease is clipped to what the budget has left, so:

- **No overshoot per window**: all processes together accept at most the budget in one
  window (as long as their clocks agree to well under a window; run NTP). Over any ``T``
  seconds that is at most ``r * (T + 2 W)``: a window's budget may be spent at the end of
  one window and again at the start of the next.
- **Under-use instead**: tokens a process leased and did not spend are lost when the
  window ends, at most ``slice - 1`` per process per window; callers spread over many
  processes may be refused slightly before the budget is spent.
- Each process also keeps its token bucket (:class:`RateLimiter`): one process
  alone never bursts past one second's worth, whatever the window has left.
- A refused window is remembered until it ends: refusals cost no store call either.
- When the state store fails, the process falls back to its own bucket until the window
  ends (each process then allows the full rate) and logs a warning.

``memory://`` state is private to one process: the server keeps per-process buckets.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from ..errors import PraisonDBError

if TYPE_CHECKING:
    from ..stores.base import StateStore

LIMIT_SCOPE = "praisondb.keys:rates"
"""The state scope of the shared counters (under the reserved ``praisondb.keys``: no
tenant reads or writes it)."""
SLICES = 8
"""A lease is about 1/SLICES of a window's budget."""
log = logging.getLogger("praisondb.server")


def window_of(rate: float) -> tuple[float, int]:
    """The window (seconds) and the whole requests it allows at ``rate`` requests/s."""
    if rate >= 1.0:
        return 1.0, int(rate)
    return float(math.ceil(1.0 / rate)), 1


def slice_of(budget: int) -> int:
    return max(1, math.ceil(budget / SLICES))


class RateLimiter:
    """Token buckets by name: ``rate`` requests a second, bursts of up to one second's
    worth (at least one request). Past ``max_buckets`` names (session tokens come and go),
    buckets idle long enough to be full again are dropped: forgetting them changes
    nothing."""

    def __init__(self, max_buckets: int = 10_000) -> None:
        self._buckets: dict[str, tuple[float, float, float]] = {}
        self._lock = threading.Lock()
        self.max_buckets = max_buckets

    def wait(self, name: str, rate: float, now: float) -> float:
        """What :meth:`take` would answer, without taking."""
        with self._lock:
            tokens, then, _ = self._buckets.get(name, (max(1.0, rate), now, rate))
        tokens = min(max(1.0, rate), tokens + (now - then) * rate)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / rate

    def take(self, name: str, rate: float, now: float | None = None) -> float:
        """0 when a request may go now, else the seconds until one may."""
        now = time.monotonic() if now is None else now
        capacity = max(1.0, rate)
        with self._lock:
            tokens, then, _ = self._buckets.get(name, (capacity, now, rate))
            tokens = min(capacity, tokens + (now - then) * rate)
            wait = 0.0 if tokens >= 1.0 else (1.0 - tokens) / rate
            self._buckets[name] = (tokens - 1.0 if wait == 0.0 else tokens, now, rate)
            if len(self._buckets) > self.max_buckets:
                self._prune(now)
            return wait

    def _prune(self, now: float) -> None:
        for name, (tokens, then, rate) in list(self._buckets.items()):
            if tokens + (now - then) * rate >= max(1.0, rate):
                del self._buckets[name]


@dataclass
class _Slot:
    """What this process holds of one key's current window."""

    window: int
    end: float
    """When the window ends (wall-clock seconds)."""
    tokens: int = 0
    closed: bool = False
    """The window's budget is spent (or the store failed): lease no more in it."""
    offline: bool = False
    """The store failed in this window: the local bucket alone decides."""


class SharedRateLimiter:
    """Leases slices of each key's per-window budget from ``store`` (see the module)."""

    def __init__(self, store: StateStore, local: RateLimiter) -> None:
        self.store = store
        self.local = local
        self._slots: dict[str, _Slot] = {}
        self._lock = threading.Lock()

    def quick(self, name: str, rate: float, now: float | None = None) -> float | None:
        """The wait (0: go) when it can be told without the store, else None: then call
        :meth:`take` off the event loop."""
        now = time.time() if now is None else now
        width, _ = window_of(rate)
        index = int(now // width)
        with self._lock:
            wait = self.local.wait(name, rate, now)
            if wait > 0:
                return wait
            slot = self._slots.get(name)
            if slot is None or slot.window != index:
                return None
            if slot.offline or slot.tokens > 0:
                slot.tokens -= 0 if slot.offline else 1
                self.local.take(name, rate, now)
                return 0.0
            if slot.closed:
                return (index + 1) * width - now
            return None

    def take(self, name: str, rate: float, now: float | None = None) -> float:
        """0 when a request may go now, else the seconds until one may (may call the store)."""
        now = time.time() if now is None else now
        while True:  # another thread may spend the slice this one leased: lease again
            found = self.quick(name, rate, now)
            if found is not None:
                return found
            self._lease(name, rate, now)

    def _lease(self, name: str, rate: float, now: float) -> None:
        width, budget = window_of(rate)
        index = int(now // width)
        size = slice_of(budget)
        granted, offline = 0, False
        try:
            total = self.store.incr(
                LIMIT_SCOPE,
                _counter(name, index),
                size,
                expires_at=datetime.fromtimestamp((index + 2) * width + 10, timezone.utc),
            )
            granted = max(0, min(size, budget - (total - size)))
        except PraisonDBError as exc:
            log.warning("rate limits fall back to this process for now: %s", exc)
            offline = True
        with self._lock:
            slot = self._slots.get(name)
            if slot is None or slot.window != index:
                slot = self._slots[name] = _Slot(index, (index + 1) * width)
            slot.tokens += granted
            slot.closed = slot.closed or granted < size or offline
            slot.offline = slot.offline or offline
            if len(self._slots) > self.local.max_buckets:
                self._prune(now)

    def _prune(self, now: float) -> None:
        for name, slot in list(self._slots.items()):
            if slot.end <= now:
                del self._slots[name]


def _counter(name: str, index: int) -> str:
    """The counter's key: a digest, so no key id or session id is stored in the clear."""
    return f"{hashlib.sha256(name.encode()).hexdigest()[:32]}@{index}"


__all__ = ["LIMIT_SCOPE", "RateLimiter", "SharedRateLimiter", "slice_of", "window_of"]
