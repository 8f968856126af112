"""What every part of the SQL store stands on: the engine, retries, translated errors,
transactions and the fast-path reads.

``SQLStore`` sets the attributes in its constructor; its parts derive from
:class:`SQLCore`, so each uses the one real ``_call`` and ``_tx``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ...errors import PraisonDBError
from ...retry import Retry
from ...urls import StoreURL
from . import migrate
from .errors import is_retryable, translate
from .fastpath import FastPath

T = TypeVar("T")


class SQLCore:
    """The engine and its retries; no store operation of its own."""

    url: StoreURL
    _engine: Engine
    _guard: Any
    _retry: Retry
    _write: dict[str, Any]
    _dialect: str
    _fast: FastPath

    def __repr__(self) -> str:
        return f"SQLStore({self.url.redacted!r})"

    # -- plumbing -------------------------------------------------------------
    def _call(self, fn: Callable[[], T], *, action: str) -> T:
        """Run ``fn`` with retries on transient failures; driver errors become ours, redacted."""

        def attempt() -> T:
            try:
                with self._guard:
                    return fn()
            except PraisonDBError:
                raise
            except sa.exc.SQLAlchemyError as exc:
                translated = translate(exc, self.url)
                if translated is None:
                    raise
                raise translated from exc

        return self._retry.call(attempt, transient=is_retryable, url=self.url, action=action)

    def _tx(
        self,
        fn: Callable[[Connection], T],
        *,
        write: bool = False,
        action: str = "query",
        races: int = 0,
    ) -> T:
        """``fn`` inside one transaction; ``races``: re-run it after that many unique-key races."""

        def once() -> T:
            left = races
            while True:
                try:
                    with self._engine.connect() as conn:
                        if write:
                            conn.execution_options(**self._write)
                        with conn.begin():
                            return fn(conn)
                except sa.exc.IntegrityError:
                    if left <= 0:
                        raise
                    left -= 1

        return self._call(once, action=action)

    def _rows(
        self, key: Any, build: Callable[[], sa.Select[Any]], values: dict[str, Any]
    ) -> list[tuple[Any, ...]]:
        """A small read on the fast path (see FastPath.rows), with the usual retries."""
        return self._call(lambda: self._fast.rows(key, build, values), action="read")

    def _serialize_writes(self) -> Any:
        """aiosqlite: writers of this process take turns on a lock before SQLite's own.

        SQLite has one writer at a time. Blocked, a ``BEGIN IMMEDIATE`` waits in SQLite's
        busy handler, which sleeps in growing steps (up to 100 ms) on the connection's
        thread; with many tasks each on its own connection, most of the time went to those
        sleeps (seconds at the tail). Queued on an asyncio lock instead, the next writer
        starts the moment the last one commits. Taken before a connection, never while
        holding one, so it cannot deadlock with the pool; other processes still meet
        SQLite's lock and busy_timeout. Returns the lock for the fast path.
        """
        from .async_engine import GreenletLock

        lock = GreenletLock()
        tx = self._tx

        def serial_tx(fn: Callable[[Connection], T], *, write: bool = False, **kw: Any) -> T:
            if not write:
                return tx(fn, **kw)
            with lock:
                return tx(fn, write=True, **kw)

        self._tx = serial_tx  # type: ignore[method-assign]
        return lock

    def ping(self) -> None:
        self._tx(lambda conn: conn.execute(sa.text("SELECT 1")).scalar(), action="ping")

    def schema_version(self) -> str | None:
        return self._call(lambda: migrate.current_on(self._engine), action="schema_version")

    def close(self) -> None:
        self._fast.close()
        self._engine.dispose()
