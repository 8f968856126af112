"""Cross-process leases built on the state store's compare-and-set.

One implementation serves every backend. The conformance suite proves that
compare-and-set is atomic on each of them (Redis, SQL, MongoDB, JSON files), and
that is all a lease needs, so a lock behaves identically whichever store holds the
state, and no backend carries a second, lock-only code path.

A lease is one state entry ``(LOCK_SCOPE, name)`` whose value says who holds it and
until when. Acquiring writes it with ``expected_version`` equal to the version just
read (0 when absent), so of two contenders exactly one wins. A lease nobody releases
(the holder crashed) simply runs out: the next contender sees ``until`` in the past
and takes it over with the same compare-and-set.

The fencing token is the entry's version at acquisition. Versions only grow while the
entry exists, so every later holder gets a larger token; a storage service that
remembers the largest token it has seen can reject writes from a holder whose lease
ran out while it was paused. The entry is kept for ``RECORD_RETENTION`` after the
last use so tokens stay monotonic across idle periods yet abandoned locks do not
accumulate forever.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import time
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .. import clock
from ..errors import Conflict, LeaseLost, LockTimeout, ValidationError
from ..ids import new_id
from ..model import StateEntry
from .lock_names import LOCK_SCOPE, session_lock_name

if TYPE_CHECKING:
    from .repositories import DataPort

log = logging.getLogger("praisondb.locks")

RECORD_RETENTION = timedelta(days=30)
DEFAULT_LEASE = 30.0
_MIN_POLL, _MAX_POLL = 0.005, 0.2


def _seconds(value: float | timedelta | None, what: str) -> float | None:
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 0:
        raise ValidationError(f"{what} must not be negative, not {value!r}")
    return seconds


class Lease:
    """An exclusive, expiring claim on ``name``; use as a context manager.

    ``timeout`` is how long :meth:`acquire` waits (None: forever, 0: one try);
    ``ttl`` is how long the lease lasts without :meth:`extend`.
    """

    def __init__(
        self,
        db: DataPort,
        name: str,
        *,
        timeout: float | timedelta | None = 10.0,
        ttl: float | timedelta = DEFAULT_LEASE,
    ) -> None:
        lease_seconds = _seconds(ttl, "lock ttl")
        if not lease_seconds:
            raise ValidationError("lock ttl must be positive")
        self._db = db
        self.name = name
        self.timeout = _seconds(timeout, "lock timeout")
        self.ttl = lease_seconds
        self.owner = f"{os.getpid()}:{new_id()}"
        self.token: int | None = None
        """The fencing token of the current hold; None while not held."""
        self._version = 0
        self._until = 0.0

    def __repr__(self) -> str:
        state = f"token={self.token}" if self.token is not None else "not held"
        return f"Lease({self.name!r}, {state})"

    @property
    def held(self) -> bool:
        """True while we hold it and it has not run out (by our clock)."""
        return self.token is not None and clock.time() < self._until

    def _record(self, token: int, until: float) -> dict[str, Any]:
        return {"owner": self.owner, "until": until, "token": token}

    def _write(self, value: dict[str, Any], expected_version: int) -> StateEntry:
        return self._db.state.set(
            self.name,
            value,
            scope=LOCK_SCOPE,
            ttl=RECORD_RETENTION,
            expected_version=expected_version,
        )

    def _write_once(self, value: dict[str, Any], expected_version: int) -> StateEntry | None:
        """Compare-and-set ``value``; None if someone else moved the version first.

        A Conflict can also mean our own write landed and only its reply was lost (the
        store's retry then finds the version moved): the entry then holds exactly
        ``value`` at the next version, and ``value`` names this lease's unique owner or
        token, so no one else can have written it."""
        try:
            return self._write(value, expected_version)
        except Conflict:
            entry = self._db.state.get_entry(self.name, scope=LOCK_SCOPE)
            if entry is not None and entry.version == expected_version + 1 and entry.value == value:
                return entry
            return None

    def try_acquire(self) -> bool:
        """One attempt; True if we now hold the lease."""
        if self.token is not None:
            raise ValidationError(f"lock {self.name!r} is already held by this Lease")
        entry = self._db.state.get_entry(self.name, scope=LOCK_SCOPE)
        now = clock.time()
        if entry is not None:
            value = entry.value if isinstance(entry.value, dict) else {}
            if value.get("owner") is not None and float(value.get("until", 0)) > now:
                return False
        expected = entry.version if entry is not None else 0
        until = now + self.ttl
        # The token is the version this write will produce.
        claim = self._record(expected + 1, until)
        try:
            written = self._write_once(claim, expected)
        except BaseException:
            self._withdraw(claim, expected + 1)
            raise
        if written is None:
            return False
        self.token, self._version, self._until = written.version, written.version, until
        return True

    def _withdraw(self, claim: dict[str, Any], version: int) -> None:
        """Undo a claim whose write may have landed although the call failed or was
        cancelled (an async waiter cancelled mid-write): a lease nobody knows it holds
        would block every other waiter until it ran out. Best effort; the lease's TTL
        covers a store that cannot be reached now."""
        with contextlib.suppress(Exception):
            entry = self._db.state.get_entry(self.name, scope=LOCK_SCOPE)
            if entry is not None and entry.version == version and entry.value == claim:
                self._write_once({"owner": None, "until": 0, "token": version}, version)

    def acquire(self) -> Lease:
        """Wait up to ``timeout`` for the lease; raises LockTimeout."""
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        pause = _MIN_POLL
        while not self.try_acquire():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise LockTimeout(f"lock {self.name!r} is held by someone else; gave up waiting")
            sleep = random.uniform(pause / 2, pause)
            clock.pause(sleep if remaining is None else min(sleep, remaining))
            pause = min(pause * 2, _MAX_POLL)
        return self

    def extend(self, ttl: float | timedelta | None = None) -> None:
        """Push the expiry out to ``ttl`` (default: the lease's ttl) from now."""
        if self.token is None:
            raise ValidationError(f"lock {self.name!r} is not held")
        seconds = _seconds(ttl, "lock ttl") or self.ttl
        until = clock.time() + seconds
        written = self._write_once(self._record(self.token, until), self._version)
        if written is None:
            self.token = None
            raise LeaseLost(f"lock {self.name!r} was taken over after its lease ran out")
        self._version, self._until = written.version, until

    def release(self) -> None:
        """Give the lease up; raises LeaseLost if another holder took it meanwhile."""
        if self.token is None:
            return
        token, self.token = self.token, None
        if self._write_once({"owner": None, "until": 0, "token": token}, self._version) is None:
            raise LeaseLost(f"lock {self.name!r} was taken over after its lease ran out")

    def __enter__(self) -> Lease:
        if self.token is None:
            self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.release()
        except LeaseLost:
            if exc is None:
                raise
            log.warning("lock %r was lost while an error was propagating", self.name)


__all__ = ["LOCK_SCOPE", "Lease", "LeaseLost", "LockTimeout", "session_lock_name"]
