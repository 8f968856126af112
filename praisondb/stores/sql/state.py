"""Scoped key/value state in SQL: TTL, versions (compare-and-set) and atomic incr.

Writes lock the (scope, key) row (SELECT ... FOR UPDATE; SQLite's BEGIN IMMEDIATE) and
decide in Python, so one code path serves every dialect. Two writers creating the same
key race on the primary key: the loser gets a unique violation and the whole
transaction is re-run, now finding the row. Expired rows are invisible to every read
and are purged at most once a minute, piggybacked on writes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ...errors import ValidationError
from ...model import JSON, StateEntry, utcnow
from ...validation import INT_MAX, INT_MIN, incr_overflow
from .._kit import chunks, version_conflict
from ..base import new_write_token
from .fastpath import FastPath
from .faststate import FastState
from .schema import state
from .statements import prefix_upper_bound

T = TypeVar("T")
_PURGE_EVERY_S = 60.0


def _racing(fn: Callable[[], T], races: int) -> T:
    """``fn``, re-run after up to ``races`` unique-key races (two writers creating one key:
    the loser's transaction is re-run and now finds the row)."""
    while True:
        try:
            return fn()
        except sa.exc.IntegrityError:
            if races <= 0:
                raise
            races -= 1


class Transactor(Protocol):
    """Runs ``fn`` in one transaction with retries (``SQLStore._tx``)."""

    def __call__(
        self,
        fn: Callable[[Connection], T],
        *,
        write: bool = False,
        action: str = "query",
        races: int = 0,
    ) -> T: ...


class Caller(Protocol):
    """Runs ``fn`` with retries, driver errors translated (``SQLStore._call``)."""

    def __call__(self, fn: Callable[[], T], *, action: str) -> T: ...


class SQLState:
    """State on one SQL store: the hot calls (get, set, list, put) on the DBAPI fast path
    (``faststate``), the rest through Core."""

    def __init__(
        self,
        tx: Transactor,
        dialect: str,
        call: Caller,
        fast: FastPath,
        check_size: Callable[[int], None] | None = None,
    ) -> None:
        """``check_size``: MySQL/MariaDB's max_allowed_packet check of one value's size."""
        self._tx = tx
        self._call = call
        self._dialect = dialect
        self._fast = FastState(fast, dialect, check_size)
        self._last_purge = 0.0

    @staticmethod
    def _live(now: datetime) -> sa.ColumnElement[bool]:
        return sa.or_(state.c.expires_at.is_(None), state.c.expires_at > now)

    @staticmethod
    def _key(scope: str, key: str) -> sa.ColumnElement[bool]:
        return sa.and_(state.c.scope == scope, state.c.key == key)

    def _locked_entry(self, conn: Connection, scope: str, key: str) -> Any:
        """(value, version, expires_at, write_token, updated_at) of the row, locked."""
        return conn.execute(
            sa.select(
                state.c.value,
                state.c.version,
                state.c.expires_at,
                state.c.write_token,
                state.c.updated_at,
            )
            .where(self._key(scope, key))
            .with_for_update()
        ).first()

    def get_entry(self, scope: str, key: str) -> StateEntry | None:
        now = utcnow()
        return self._call(lambda: self._fast.get(scope, key, now), action="get_entry")

    def set_entry(
        self,
        scope: str,
        key: str,
        value: JSON,
        *,
        expires_at: datetime | None = None,
        expected_version: int | None = None,
        write_token: str | None = None,
    ) -> StateEntry:
        token = write_token or new_write_token()

        def decide(row: Any) -> tuple[StateEntry, str | None]:
            now = utcnow()
            live = row is not None and (row[2] is None or row[2] > now)
            if live and row[3] == token:  # this write landed already; its reply was lost
                return StateEntry(scope, key, row[0], row[1], row[2], row[4]), None
            version = row[1] if live else 0
            if expected_version is not None and version != expected_version:
                raise version_conflict(scope, key, version, expected_version)
            return StateEntry(scope, key, value, version + 1, expires_at, now), token

        def write() -> StateEntry:
            if self._fast.one_statement:
                wanted = StateEntry(scope, key, value, 0, expires_at, utcnow())
                done = self._fast.set_at_once(wanted, expected_version, token)
                if done is not None:
                    return done
            return self._fast.write(scope, key, decide)  # decides what the refusal means

        entry = self._call(lambda: _racing(write, 5), action="set_entry")
        self._maybe_purge()
        return entry

    def _store_entry(
        self, conn: Connection, entry: StateEntry, *, exists: bool, token: str
    ) -> None:
        values = {
            "value": entry.value,
            "version": entry.version,
            "expires_at": entry.expires_at,
            "updated_at": entry.updated_at,
            "write_token": token,
        }
        if exists:
            conn.execute(state.update().where(self._key(entry.scope, entry.key)).values(values))
        else:
            conn.execute(state.insert().values(scope=entry.scope, key=entry.key, **values))

    def delete_entry(self, scope: str, key: str, *, expected_version: int | None = None) -> bool:
        attempts = 0

        def delete(conn: Connection) -> bool:
            nonlocal attempts
            attempts += 1
            now = utcnow()
            if expected_version is not None:
                row = self._locked_entry(conn, scope, key)
                live = row is not None and (row[2] is None or row[2] > now)
                if not live and attempts > 1 and expected_version > 0:
                    return True  # a re-send: gone, as asked (see StateStore.delete_entry)
                version = row[1] if live else 0
                if version != expected_version:
                    raise version_conflict(scope, key, version, expected_version)
            removed = conn.execute(
                state.delete().where(self._key(scope, key), self._live(now))
            ).rowcount
            return bool(removed)

        return self._tx(delete, write=True, action="delete_entry")

    def incr(
        self, scope: str, key: str, amount: int = 1, *, expires_at: datetime | None = None
    ) -> int:
        token = new_write_token()

        def bump(conn: Connection) -> int:
            now = utcnow()
            row = self._locked_entry(conn, scope, key)
            live = row is not None and (row[2] is None or row[2] > now)
            if live and row[3] == token:  # this incr landed already; its reply was lost
                return int(row[0])
            if not live:
                entry = StateEntry(scope, key, amount, 1, expires_at, now)
                self._store_entry(conn, entry, exists=row is not None, token=token)
                return amount
            current = row[0]
            if not isinstance(current, int) or isinstance(current, bool):
                raise ValidationError(
                    f"state {scope}/{key} holds {type(current).__name__}, not an integer"
                )
            if not INT_MIN <= current + amount <= INT_MAX:
                raise incr_overflow(scope, key, current, amount)
            conn.execute(
                state.update()
                .where(self._key(scope, key))
                .values(
                    value=current + amount, version=row[1] + 1, updated_at=now, write_token=token
                )
            )
            return current + amount

        result = self._tx(bump, write=True, action="incr", races=5)
        self._maybe_purge()
        return result

    def list_entries(
        self,
        scope: str | None = None,
        prefix: str = "",
        *,
        limit: int | None = None,
        after: tuple[str, str] | None = None,
        scope_prefix: str = "",
    ) -> list[StateEntry]:
        if limit is not None and limit <= 0:
            return []
        if scope is not None and not scope.startswith(scope_prefix):
            return []
        now = utcnow()
        upper = prefix_upper_bound(prefix) if prefix else None
        scopes = None if scope is not None or not scope_prefix else scope_prefix
        return self._call(
            lambda: self._fast.entries(scope, prefix, upper, limit, after, now, scopes),
            action="list_entries",
        )

    def delete_scope(self, scope: str) -> int:
        def delete(conn: Connection) -> int:
            now = utcnow()
            live = conn.execute(
                state.delete().where(state.c.scope == scope, self._live(now))
            ).rowcount
            conn.execute(state.delete().where(state.c.scope == scope))
            return int(live)

        return self._tx(delete, write=True, action="delete_scope")

    def put_entries(self, entries: Iterable[StateEntry]) -> None:
        rows = list(entries)

        def put() -> None:
            for chunk in chunks(rows):
                self._fast.put(chunk)

        if rows:
            self._call(lambda: _racing(put, 2), action="put_entries")

    def _maybe_purge(self) -> None:
        """Drop expired state now and then, so expired rows do not pile up forever."""
        moment = time.monotonic()
        if moment - self._last_purge < _PURGE_EVERY_S:
            return
        self._last_purge = moment
        now = utcnow()
        self._tx(
            lambda conn: conn.execute(state.delete().where(state.c.expires_at <= now)),
            write=True,
            action="purge",
        )
