"""The two hot paths, appending and loading messages, run on the bare DBAPI connection.

SQLAlchemy's Connection costs ~80 µs per statement on a small machine, as much as the
database work of a SQLite append. So these statements are built with Core once, compiled
once per dialect, and executed straight on a pooled DBAPI cursor, with values encoded by
the same :class:`~.Codec` the Core column types use. Driver errors are
re-raised as SQLAlchemy's exception classes so the store translates them like any other.

Appending assigns seq and inserts the batch in the fewest round trips each dialect allows.
The session row's UPDATE takes its row lock first, so concurrent writers of one session
queue there; nothing reads or rewrites the session's earlier messages. The UPDATE touches
no indexed column (``updated_floor``, the indexed copy of ``updated_at``, moves at most
once a FLOOR_LAG; see the sessions table), so it writes one row and no index entry.

- PostgreSQL: one statement, ``WITH s AS (UPDATE ... RETURNING) INSERT ... SELECT`` over
  ``unnest`` of arrays, so the SQL text is the same for any batch size (psycopg prepares it).
- SQLite: ``BEGIN IMMEDIATE``, the ``UPDATE``, a ``SELECT`` of the new counters (cheaper
  than ``RETURNING`` in sqlite3; aiosqlite, where each statement is a thread round trip,
  takes them back with ``RETURNING``), one executemany INSERT.
- MySQL/MariaDB: ``UPDATE ... SET last_seq = LAST_INSERT_ID(last_seq + n)`` (the new value
  comes back in the OK packet, no SELECT needed), then one multi-row INSERT.

Under the async face the DBAPI connection is SQLAlchemy's adapted one (aiosqlite,
psycopg's AsyncConnection, aiomysql), which has the same sync API; only PostgreSQL's
COPY (bulk.py) talks to the async driver connection itself.

A call interrupted by something other than a driver error (a cancelled task, Ctrl-C)
never leaves half a transaction behind: on SQLite the transaction is rolled back (its
calls are never cut in half: sqlite3 finishes them, aiosqlite runs queued calls in
order), on a server the connection is discarded, since the interrupted round trip may
have left a reply unread (the server rolls back what was not committed).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.compiler import SQLCompiler

from ...gc_pause import no_gc_pauses
from ...model import Message
from .async_engine import AiosqliteCursor
from .compiled import (
    EXISTS,
    FLOOR,
    LATEST,
    MESSAGE_COLUMNS,
    MYSQL_FLOOR,
    MYSQL_LATEST,
    PG_APPEND,
    PG_APPEND_ONE,
    SID,
    N,
    Statement,
)
from .engine import CLEAN
from .schema import FLOOR_LAG, messages, sessions
from .types import EPOCH, MYSQL, codec, json_dumps, pg_json_text

T = TypeVar("T")


class FastPath:
    """Append and load messages on one engine's pooled DBAPI connections."""

    def __init__(self, engine: Engine, writes: Any = None) -> None:
        """``writes``: a lock every writer of this process takes first (aiosqlite, see
        SQLCore._serialize_writes), or None."""
        self.engine = engine
        self.dialect = engine.dialect
        self.name = "mysql" if self.dialect.name in MYSQL else self.dialect.name
        self.codec = codec(self.name)
        self.is_async = bool(self.dialect.is_async)
        """The engine is the sync face of SQLAlchemy's async engine (see engine.py)."""
        self._error = self.dialect.loaded_dbapi.Error
        self.paramstyle = self.dialect.paramstyle
        self._exists = self._compile(EXISTS)
        self._insert = self._compile(messages.insert(), column_keys=list(MESSAGE_COLUMNS))
        if self._insert.order is not None and tuple(self._insert.order) != MESSAGE_COLUMNS:
            raise AssertionError(f"unexpected INSERT layout {self._insert.order}")
        values: dict[str, Any] = {
            "last_seq": sessions.c.last_seq + N,
            "message_count": sessions.c.message_count + N,
            "updated_at": LATEST,
        }
        if self.name == "mysql":
            values["last_seq"] = sa.func.last_insert_id(sessions.c.last_seq + N)
            values["updated_at"] = MYSQL_LATEST
            values["updated_floor"] = MYSQL_FLOOR
        elif self.name != "sqlite":
            # SQLite rewrites an index entry whenever its column is SET, even to the same
            # value: there the floor is read back and moved by a second statement, when due.
            values["updated_floor"] = FLOOR
        bump = sessions.update().where(sessions.c.id == SID).values(values)
        counters = (sessions.c.last_seq, sessions.c.updated_floor, sessions.c.updated_at)
        # aiosqlite: each statement is a thread round trip, dearer than RETURNING's cost in
        # sqlite3, so the UPDATE hands back what the sync face reads with a SELECT, and the
        # statements go through AiosqliteCursor (one round trip each)
        self._returning = self.name == "sqlite" and self.is_async
        self._bump = self._compile(bump.returning(*counters) if self._returning else bump)
        self._counters = self._compile(
            sa.select(sessions.c.last_seq, sessions.c.updated_floor, sessions.c.updated_at).where(
                sessions.c.id == SID
            )
        )
        self._raise_floor = self._compile(
            sessions.update()
            .where(sessions.c.id == SID)
            .values(updated_floor=sessions.c.updated_at)
        )
        self._lag_us = FLOOR_LAG // timedelta(microseconds=1)
        pg = self.name == "postgresql"
        self._pg_append = self._compile(PG_APPEND) if pg else None
        self._pg_append_one = self._compile(PG_APPEND_ONE) if pg else None
        self._selects: dict[tuple[bool, ...], Statement] = {}
        self._queries: dict[Any, tuple[Statement, list[Callable[[Any], Any] | None]]] = {}
        # File SQLite: keep our own LIFO of connections taken out of the pool. Checking one
        # out of SQLAlchemy's pool and back costs ~20 us, a quarter of a whole append; a
        # list pop/append costs nothing. In-memory SQLite (one shared connection) and the
        # servers (where a network round trip dwarfs it) use the pool as usual, and so does
        # aiosqlite: each of its calls is a thread round trip that dwarfs it too, and the
        # pool bounds the connections (a thread each) that many tasks at once would open.
        keep_own = (
            self.name == "sqlite" and not self.is_async and not isinstance(engine.pool, StaticPool)
        )
        self._idle: list[Any] | None = [] if keep_own else None
        # At most pool_size idle fast-path connections are kept; extras are closed.
        self._keep = max(1, int(getattr(engine.pool, "size", lambda: 5)()))
        self._pid = os.getpid()
        self._closed = False
        self._clean_reads = self.name == "sqlite" and self.is_async
        """aiosqlite: a successful call leaves no transaction, so the pool skips its reset."""
        self._writes = writes
        self._write_run = self._run if writes is None else self._serial_run

    def _compile(self, stmt: Any, column_keys: list[str] | None = None) -> Statement:
        compiled = stmt.compile(dialect=self.dialect, column_keys=column_keys)
        assert isinstance(compiled, SQLCompiler)
        return Statement(compiled)

    @property
    def insert_statement(self) -> Statement:
        """The plain multi-row INSERT of messages (columns in MESSAGE_COLUMNS order)."""
        return self._insert

    def run_on(self, conn: Connection, fn: Callable[[Any], T]) -> T:
        """``fn(driver connection)`` inside ``conn``'s transaction, driver errors wrapped.

        For what SQLAlchemy has no API for (PostgreSQL COPY); errors come out as
        SQLAlchemy's classes, so the store's race, retry and translation rules apply.
        Under the async face ``fn`` gets the async driver connection (``is_async``).
        """
        pooled = conn.connection
        try:
            return fn(pooled.driver_connection)
        except self._error as exc:
            lost = self.dialect.is_disconnect(exc, pooled.dbapi_connection, None)
            if lost:
                conn.invalidate(exc)
            raise self._wrap(exc, invalidated=lost) from exc
        except BaseException as exc:
            if not isinstance(exc, Exception) and self.name != "sqlite":
                conn.invalidate(exc)  # interrupted mid round trip: see the module docstring
            raise

    # -- transactions on the bare connection --------------------------------------------
    def _checkout(self) -> tuple[Any, Any]:
        """(what to hand back on checkin, the driver connection)."""
        if self._idle is None:
            pooled = self.engine.raw_connection()
            return pooled, pooled.dbapi_connection
        if self._pid != os.getpid():  # forked: never share SQLite handles with the parent
            self._idle, self._pid = [], os.getpid()
        try:
            raw = self._idle.pop()
        except IndexError:
            pooled = self.engine.raw_connection()  # runs the engine's connect hooks (pragmas)
            raw = pooled.dbapi_connection
            pooled.detach()  # ours from now on; closed in close()
        return raw, raw

    def _checkin(self, handle: Any, broken: BaseException | None, *, committed: bool) -> None:
        if self._idle is None:
            if broken is not None:
                handle.invalidate(broken)
            elif committed:
                handle.info[CLEAN] = True  # MySQL, aiosqlite: skip the pool's ROLLBACK
            handle.close()
        elif broken is not None or self._closed or len(self._idle) >= self._keep:
            with contextlib.suppress(self._error):
                handle.close()
        else:
            self._idle.append(handle)

    def close(self) -> None:
        """Close the SQLite connections kept for the fast path (the engine owns the rest)."""
        self._closed = True
        idle, self._idle = self._idle, ([] if self._idle is not None else None)
        for raw in idle or ():
            with contextlib.suppress(self._error):
                raw.close()

    def run(self, fn: Callable[[Any], T], *, write: bool, single: bool = False) -> T:
        """``fn(cursor)`` in one transaction (see :meth:`_run`); writes take the process's
        write lock first where there is one (aiosqlite)."""
        if write:
            return self._write_run(fn, write=True, single=single)
        return self._run(fn, write=False)

    def _run(self, fn: Callable[[Any], T], *, write: bool, single: bool = False) -> T:
        """``fn(cursor)`` inside one transaction, committed on success, rolled back on error.

        A read (``write=False``) must be one statement, which is atomic by itself, so it
        skips the transaction round trips: SQLite runs it in autocommit; PostgreSQL too
        (psycopg would otherwise send BEGIN and COMMIT, two extra round trips); on
        MySQL the pool's reset-on-return ROLLBACK ends it, so no COMMIT is sent.
        A write that is one statement (``single=True``) runs in autocommit on
        PostgreSQL for the same reason: an append is then one round trip, not three.
        A plain call rather than a context manager: on SQLite an append is ~30 us of
        database work, and a generator-based ``with`` added a tenth of that.
        """
        try:
            handle, raw = self._checkout()
        except self._error as exc:
            raise self._wrap(exc, invalidated=False) from exc
        cursor: Any = None
        broken: BaseException | None = None
        committed = False
        single = self.name == "postgresql" and (single or not write)
        try:
            if single:
                raw.autocommit = True
            cursor = AiosqliteCursor(raw) if self._returning else raw.cursor()
            if self.name == "sqlite" and write:
                cursor.execute("BEGIN IMMEDIATE")  # reads run as single autocommit statements
            result = fn(cursor)
            if write and not single:
                if self.name == "sqlite":
                    cursor.execute("COMMIT")
                else:
                    raw.commit()
                committed = True
            elif self._clean_reads:
                committed = True  # a read in autocommit: no transaction left to roll back
            return result
        except self._error as exc:
            lost = self.dialect.is_disconnect(exc, raw, cursor)
            broken = exc if lost else self._unless_sqlite(exc)  # if the rollback is cut short
            if not lost:
                broken = self._rollback(raw)
            raise self._wrap(exc, invalidated=lost) from exc
        except BaseException as exc:  # see the module docstring
            broken = self._unless_sqlite(exc)
            if broken is None or isinstance(exc, Exception):
                broken = self._rollback(raw)
            raise
        finally:
            try:
                if cursor is not None:
                    try:  # noqa: SIM105 (contextlib.suppress costs ~1 us an append)
                        cursor.close()
                    except self._error:
                        pass
                if single and broken is None:
                    try:
                        raw.autocommit = False  # the pool hands out transactional connections
                    except self._error as exc:
                        broken = exc
            except BaseException as exc:  # interrupted while tidying up
                broken = broken or self._unless_sqlite(exc)
                raise
            finally:
                self._checkin(handle, broken, committed=committed)

    def _unless_sqlite(self, exc: BaseException) -> BaseException | None:
        """``exc`` as the reason to discard the connection, except on SQLite, whose calls
        are never cut in half (the module docstring): a rollback interrupted in turn
        still runs, so the connection stays (in memory, it is the whole database)."""
        return None if self.name == "sqlite" else exc

    def _serial_run(self, fn: Callable[[Any], T], *, write: bool, single: bool = False) -> T:
        """:meth:`_run` holding the process's write lock (taken before the connection)."""
        with self._writes:
            return self._run(fn, write=write, single=single)

    def _rollback(self, raw: Any) -> BaseException | None:
        """Roll back; returns the error if that failed too (the connection is then unusable).

        sqlite3's rollback() does nothing outside a transaction; aiosqlite queues it
        behind any call still running for an interrupted caller."""
        try:
            raw.rollback()
        except self._error as exc:
            return exc
        return None

    def _wrap(self, exc: Exception, *, invalidated: bool) -> sa.exc.StatementError:
        return sa.exc.DBAPIError.instance(
            None,
            None,
            exc,
            self._error,
            hide_parameters=True,
            connection_invalidated=invalidated,
            dialect=self.dialect,
        )

    # -- appending ------------------------------------------------------------------------
    def append(self, session_id: str, batch: Sequence[Message], now: datetime) -> int | None:
        """Assign seq to ``batch`` and store it; the seq before it, or None if no session."""
        if not batch:
            return self._write_run(partial(self._exists_in, session_id), write=True, single=True)
        # PostgreSQL: one statement (the CTE append), run in autocommit
        return self._write_run(
            partial(self._append, session_id, batch, now), write=True, single=True
        )

    def _exists_in(self, session_id: str, cursor: Any) -> int | None:
        cursor.execute(self._exists.sql, self._exists.args({"sid": session_id}))
        return 0 if cursor.fetchone() is not None else None

    def _append(
        self, session_id: str, batch: Sequence[Message], now: datetime, cursor: Any
    ) -> int | None:
        if self.name == "postgresql":
            return self._append_pg(cursor, session_id, batch, now)
        n = len(batch)
        values = {"n": n, "sid": session_id, "now": self.codec.ts_bind(now)}
        if self.name == "sqlite":
            # The UPDATE, then a SELECT of what it wrote: cheaper than RETURNING in sqlite3.
            cursor.execute(self._bump.sql, self._bump.args(values))
            if not self._returning:
                if not cursor.rowcount:
                    return None
                cursor.execute(self._counters.sql, self._counters.args(values))
            row = cursor.fetchone()
            if row is None:
                return None
            last_seq, floor, updated = row
            base = int(last_seq) - n
            if floor < updated - self._lag_us:  # integer microseconds on SQLite
                cursor.execute(self._raise_floor.sql, self._raise_floor.args(values))
        else:
            values["stale"] = self.codec.ts_bind(now - FLOOR_LAG)
            cursor.execute(self._bump.sql, self._bump.args(values))
            if not cursor.rowcount:
                return None
            base = int(cursor.lastrowid) - n
        rows: list[Any] = self._rows(session_id, batch, base)
        if self._insert.order is None:  # a named paramstyle (pymysql's pyformat)
            rows = [dict(zip(MESSAGE_COLUMNS, row, strict=True)) for row in rows]
        if n == 1:
            cursor.execute(self._insert.sql, rows[0])
        else:
            cursor.executemany(self._insert.sql, rows)
        return base

    def _rows(self, session_id: str, batch: Sequence[Message], base: int) -> list[tuple[Any, ...]]:
        text, dumps, ts = self.codec.text_bind, self.codec.json_dumps, self.codec.ts_bind
        rows = []
        for seq, m in enumerate(batch, base + 1):
            content = m.content
            is_text = isinstance(content, str)
            rows.append(
                (
                    session_id,
                    seq,
                    m.id,
                    m.role,
                    0 if is_text else 1,
                    text(content if is_text else json_dumps(content)),  # type: ignore[arg-type]
                    dumps(m.metadata),
                    m.run_id,
                    ts(m.created_at),
                )
            )
        return rows

    def _append_pg(
        self, cursor: Any, session_id: str, batch: Sequence[Message], now: datetime
    ) -> int | None:
        assert self._pg_append is not None and self._pg_append_one is not None
        text, dumps = self.codec.text_bind, self.codec.json_dumps
        if len(batch) == 1:
            m = batch[0]
            is_text = isinstance(m.content, str)
            one = {
                "now": self.codec.ts_bind(now),
                "stale": self.codec.ts_bind(now - FLOOR_LAG),
                "sid": session_id,
                "id": m.id,
                "role": m.role,
                "kind": 0 if is_text else 1,
                "content": text(m.content if is_text else json_dumps(m.content)),  # type: ignore[arg-type]
                "metadata": dumps(m.metadata),
                "run_id": m.run_id,
                "created": self.codec.ts_bind(m.created_at),
            }
            cursor.execute(self._pg_append_one.sql, self._pg_append_one.args(one))
            row = cursor.fetchone()
            return None if row is None else int(row[0]) - 1
        kinds: list[int] = []
        contents: list[str] = []
        for m in batch:
            if isinstance(m.content, str):
                kinds.append(0)
                contents.append(text(m.content))
            else:  # blocks are JSON text in a text column: plain JSON, then text escaping
                kinds.append(1)
                contents.append(text(json_dumps(m.content)))
        values = {
            "n": len(batch),
            "now": self.codec.ts_bind(now),
            "stale": self.codec.ts_bind(now - FLOOR_LAG),
            "sid": session_id,
            "ids": [m.id for m in batch],
            "roles": [m.role for m in batch],
            "kinds": kinds,
            "contents": contents,
            "metas": [dumps(m.metadata) for m in batch],
            "run_ids": [m.run_id for m in batch],
            "created": [self.codec.ts_bind(m.created_at) for m in batch],
        }
        cursor.execute(self._pg_append.sql, self._pg_append.args(values))
        seqs = [row[0] for row in cursor.fetchall()]
        return min(seqs) - 1 if seqs else None

    # -- small reads ------------------------------------------------------------------------
    def rows(
        self, key: Any, build: Callable[[], sa.Select[Any]], values: dict[str, Any]
    ) -> list[tuple[Any, ...]]:
        """Run a Core SELECT (built and compiled once per ``key``); rows typed like Core's.

        Each column's value goes through the same result processor SQLAlchemy would
        apply, so timestamps, free text and JSON come back exactly as through Core, at
        a fraction of the cost per call (a transfer makes several per session).
        """
        entry = self._queries.get(key)
        if entry is None:
            stmt = build()
            processors: list[Callable[[Any], Any] | None] = [
                column.type.dialect_impl(self.dialect).result_processor(self.dialect, None)
                for column in stmt.selected_columns
            ]
            entry = self._queries[key] = (self._compile(stmt), processors)
        statement, processors = entry
        found = self._run(partial(_fetch_all, statement.sql, statement.args(values)), write=False)
        if not any(processors):
            return [tuple(row) for row in found]
        return [
            tuple(
                v if p is None or v is None else p(v) for v, p in zip(row, processors, strict=True)
            )
            for row in found
        ]

    # -- loading ----------------------------------------------------------------------------
    def _select(
        self, after: bool, before: bool, newest: bool, limited: bool, as_text: bool = False
    ) -> Statement:
        key = (after, before, newest, limited, as_text)
        found = self._selects.get(key)
        if found is None:
            columns: list[Any] = [messages.c[name] for name in MESSAGE_COLUMNS]
            if as_text:  # the metadata as PostgreSQL writes jsonb out, left unparsed
                columns[_META] = sa.cast(messages.c["metadata"], sa.Text)
            stmt = sa.select(*columns).where(messages.c.session_id == SID)
            if after:
                stmt = stmt.where(messages.c.seq > sa.bindparam("after", type_=sa.BigInteger()))
            if before:
                stmt = stmt.where(messages.c.seq < sa.bindparam("before", type_=sa.BigInteger()))
            stmt = stmt.order_by(messages.c.seq.desc() if newest else messages.c.seq)
            if limited:
                stmt = stmt.limit(sa.bindparam("limit", type_=sa.BigInteger()))
            found = self._selects[key] = self._compile(stmt)
        return found

    def load(
        self,
        session_id: str,
        *,
        after_seq: int | None,
        before_seq: int | None,
        newest: int | None,
        limit: int | None,
    ) -> list[Message]:
        """Messages in seq order; ``newest`` keeps only the final N (read newest-first)."""
        stmt = self._select(
            after_seq is not None,
            before_seq is not None,
            newest is not None,
            newest is not None or limit is not None,
        )
        values: dict[str, Any] = {"sid": session_id}
        if after_seq is not None:
            values["after"] = after_seq
        if before_seq is not None:
            values["before"] = before_seq
        if newest is not None or limit is not None:
            values["limit"] = newest if newest is not None else limit
        with no_gc_pauses():  # psycopg decodes jsonb while fetching
            rows = self._run(partial(_fetch_all, stmt.sql, stmt.args(values)), write=False)
            if newest is not None:
                rows = rows[::-1]
            return self._messages(rows)

    def wire_rows(
        self, session_id: str, *, after_seq: int | None, before_seq: int | None, limit: int | None
    ) -> list[tuple[Any, ...]] | None:
        """SQLite and PostgreSQL: messages as the server's listing rows (``MESSAGE_FIELDS``
        order), their JSON kept as the text the database holds (``orjson.Fragment``), so
        a server writes a history out without parsing and re-encoding every value first
        (a third to a half of its time on a long one). None on MySQL."""
        if self.name not in ("sqlite", "postgresql"):
            return None
        pg = self.name == "postgresql"  # jsonb read as text: psycopg would parse it
        stmt = self._select(after_seq is not None, before_seq is not None, False, True, pg)
        values: dict[str, Any] = {"sid": session_id, "limit": limit}
        if after_seq is not None:
            values["after"] = after_seq
        if before_seq is not None:
            values["before"] = before_seq
        rows = self._run(partial(_fetch_all, stmt.sql, stmt.args(values)), write=False)
        f = orjson.Fragment
        if not pg:  # text as given, metadata JSON text, times integer microseconds
            epoch, delta = EPOCH, timedelta
            return [
                (s, role, f(c) if kind else c, f(m), r, i, q, epoch + delta(0, 0, t))
                for s, q, i, role, kind, c, m, r, t in rows
            ]
        text, ts = self.codec.text_result, self.codec.ts_result
        return [
            (s, role, f(text(c)) if kind else text(c), f(pg_json_text(m)), r, i, q, ts(t))
            for s, q, i, role, kind, c, m, r, t in rows
        ]

    def _messages(self, rows: list[Any]) -> list[Message]:
        if self.name == "sqlite":
            return _sqlite_messages(rows)
        text, loads, ts = self.codec.text_result, self.codec.json_loads, self.codec.ts_result
        pg = self.name == "postgresql"  # psycopg has already parsed jsonb
        return [
            Message(
                sid,
                role,
                orjson.loads(text(content)) if kind else text(content),
                meta if pg else loads(meta),
                run_id,
                id_,
                seq,
                ts(created),
            )
            for sid, seq, id_, role, kind, content, meta, run_id, created in rows
        ]


_META = MESSAGE_COLUMNS.index("metadata")


def _fetch_all(sql: str, args: Any, cursor: Any) -> list[Any]:
    cursor.execute(sql, args)
    return list(cursor.fetchall())


def _sqlite_messages(rows: list[Any]) -> list[Message]:
    """SQLite rows to messages with no per-value codec calls (a transfer reads millions).

    Text is stored as given, metadata is always a JSON object held as text, and
    timestamps are integer microseconds: the same decoding as the Codec, inlined.
    """
    loads, epoch, delta = orjson.loads, EPOCH, timedelta
    return [
        Message(
            sid,
            role,
            loads(content) if kind else content,
            loads(meta),
            run_id,
            id_,
            seq,
            epoch + delta(0, 0, created),
        )
        for sid, seq, id_, role, kind, content, meta, run_id, created in rows
    ]
