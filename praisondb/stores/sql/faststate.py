"""State reads and writes on the bare DBAPI connection (the fast path of ``fastpath.py``).

The framework faces live on state: a LangGraph step is three state writes and a resume
two reads; an ADK append one compare-and-set. Through SQLAlchemy's Connection each of
those cost ~0.3 ms of Python on a small machine (a multi-row upsert was compiled anew on
every call: ~0.5 ms alone), several times SQLite's own work. Here every statement is
built with Core once, compiled once per dialect and run on a pooled DBAPI cursor; values
go through the same bind and result processors Core applies, so what is stored and read
back is byte for byte what the Core path stored. Semantics are ``SQLState``'s: a write
locks the row (SELECT ... FOR UPDATE; SQLite's BEGIN IMMEDIATE) and decides in Python.

PostgreSQL: a locked write is four round trips (BEGIN, SELECT, UPDATE, COMMIT), and each
commit waits for its WAL flush. So the common write is one statement in autocommit whose
WHERE clause makes the decision (compare-and-set, expiry, the write token), and a batch
is one ``INSERT ... SELECT FROM unnest(...)``: one round trip each, as atomic as before.
When the one-statement write writes nothing (a version clash, or a re-sent write that
landed already), the locked path decides what to answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.compiler import SQLCompiler

from ...model import StateEntry
from .._kit import prefix_upper_bound
from .compiled import Statement
from .fastpath import FastPath
from .schema import state
from .statements import upsert_statement

_PG_SET = """
INSERT INTO praisondb_state AS s (scope, key, value, version, expires_at, updated_at, write_token)
VALUES (%(scope)s, %(key)s, CAST(%(value)s AS jsonb), 1, %(expires)s, %(now)s, %(token)s)
ON CONFLICT (scope, key) DO UPDATE SET
    value = EXCLUDED.value,
    version = CASE WHEN s.expires_at IS NULL OR s.expires_at > EXCLUDED.updated_at
        THEN s.version + 1 ELSE 1 END,
    expires_at = EXCLUDED.expires_at,
    updated_at = EXCLUDED.updated_at,
    write_token = EXCLUDED.write_token
WHERE {guard}
RETURNING version
"""
_LIVE_ROW = "(s.expires_at IS NULL OR s.expires_at > EXCLUDED.updated_at)"
_PG_SET_ANY = _PG_SET.format(
    guard=f"NOT ({_LIVE_ROW} AND s.write_token IS NOT DISTINCT FROM EXCLUDED.write_token)"
)
"""Unconditional: writes unless the live entry already carries this write's token."""
_PG_SET_NEW = _PG_SET.format(guard=f"NOT {_LIVE_ROW}")
"""``expected_version=0``: inserts, or replaces an expired entry."""
_PG_SET_IF = """
UPDATE praisondb_state SET value = CAST(%(value)s AS jsonb), version = version + 1,
    expires_at = %(expires)s, updated_at = %(now)s, write_token = %(token)s
WHERE scope = %(scope)s AND key = %(key)s AND (expires_at IS NULL OR expires_at > %(now)s)
    AND version = %(expected)s AND write_token IS DISTINCT FROM %(token)s
RETURNING version
"""
"""``expected_version=n``: only over the live entry at version n."""
_PG_PUT = """
INSERT INTO praisondb_state (scope, key, value, version, expires_at, updated_at, write_token)
SELECT * FROM unnest(
    CAST(%(scopes)s AS text[]), CAST(%(keys)s AS text[]),
    CAST(CAST(%(values)s AS text[]) AS jsonb[]), CAST(%(versions)s AS bigint[]),
    CAST(%(expires)s AS timestamptz[]), CAST(%(updated)s AS timestamptz[]),
    CAST(%(tokens)s AS text[]))
ON CONFLICT (scope, key) DO UPDATE SET
    value = EXCLUDED.value, version = EXCLUDED.version, expires_at = EXCLUDED.expires_at,
    updated_at = EXCLUDED.updated_at, write_token = EXCLUDED.write_token
"""
_COLUMNS = ("scope", "key", "value", "version", "expires_at", "updated_at", "write_token")
_SCOPE = sa.bindparam("w_scope", type_=state.c.scope.type)
_KEY = sa.bindparam("w_key", type_=state.c.key.type)
_NOW = sa.bindparam("now", type_=state.c.expires_at.type)
_LIVE = sa.or_(state.c.expires_at.is_(None), state.c.expires_at > _NOW)
_ENTRY = (
    state.c.scope,
    state.c.key,
    state.c.value,
    state.c.version,
    state.c.expires_at,
    state.c.updated_at,
)


class _Prepared:
    """A statement compiled once, with Core's bind and result processors for its values."""

    def __init__(self, fast: FastPath, stmt: Any, column_keys: list[str] | None = None) -> None:
        dialect = fast.dialect
        compiled = stmt.compile(dialect=dialect, column_keys=column_keys)
        assert isinstance(compiled, SQLCompiler)
        self.statement = Statement(compiled)
        self.sql = self.statement.sql
        self.binds: dict[str, Callable[[Any], Any]] = {}
        for name, bind in compiled.binds.items():
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                self.binds[name] = process
        selected = getattr(stmt, "selected_columns", None)
        self.results: list[Callable[[Any], Any] | None] = [
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in (selected if selected is not None else ())
        ]

    def args(self, values: dict[str, Any]) -> Any:
        binds = self.binds
        encoded = {
            name: binds[name](value) if name in binds else value for name, value in values.items()
        }
        return self.statement.args(encoded)

    def decode(self, row: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(
            v if p is None or v is None else p(v) for v, p in zip(row, self.results, strict=True)
        )


class FastState:
    """The statements of the hot state calls, and how to run each on a cursor."""

    def __init__(
        self, fast: FastPath, dialect_name: str, check_size: Callable[[int], None] | None = None
    ) -> None:
        self.fast = fast
        self._check_size = check_size
        """MySQL/MariaDB: refuses a value over max_allowed_packet before it is sent (the
        engine's before_cursor_execute check does not see the bare DBAPI cursor)."""
        self._get = _Prepared(fast, sa.select(*_ENTRY).where(_where(), _LIVE))
        self._locked = _Prepared(
            fast,
            sa.select(
                state.c.value,
                state.c.version,
                state.c.expires_at,
                state.c.write_token,
                state.c.updated_at,
            )
            .where(_where())
            .with_for_update(),
        )
        written = [c for c in _COLUMNS if c not in ("scope", "key")]
        self._update = _Prepared(fast, state.update().where(_where()), column_keys=written)
        self._insert = _Prepared(fast, state.insert(), column_keys=list(_COLUMNS))
        self._upsert = _Prepared(
            fast, upsert_statement(dialect_name, state), column_keys=list(_COLUMNS)
        )
        self._lists: dict[tuple[bool, ...], _Prepared] = {}
        self._after_key: dict[tuple[bool, bool], _Prepared] = {}
        self.one_statement = fast.name == "postgresql" and fast.paramstyle == "pyformat"
        """PostgreSQL on psycopg: writes as single statements (the module docstring)."""

    # -- reads ----------------------------------------------------------------------------
    def get(self, scope: str, key: str, now: datetime) -> StateEntry | None:
        prepared = self._get
        args = prepared.args({"w_scope": scope, "w_key": key, "now": now})
        row = self.fast.run(partial(_fetch_one, prepared.sql, args), write=False)
        return None if row is None else StateEntry(*prepared.decode(row))

    def entries(
        self,
        scope: str | None,
        prefix: str,
        upper: str | None,
        limit: int | None,
        after: tuple[str, str] | None,
        now: datetime,
        scopes: str | None = None,
    ) -> list[StateEntry]:
        """Live entries in (scope, key) order: an index range, bounded by ``limit``;
        ``scopes``: only scopes starting with it (a range on the scope).

        Within one scope ``after`` is a plain ``key > after`` bound: the (scope, key)
        OR form made SQLite walk the whole prefix range up to it."""
        if scope is not None and after is not None:
            if after[0] > scope:
                return []
            if after[0] == scope and after[1] >= prefix:
                return self._list_after_key(scope, prefix, upper, limit, after[1], now)
            after = None  # a scope before this one: every key of this scope is after it
        scopes_upper = None if scopes is None else prefix_upper_bound(scopes)
        shape = (
            scope is not None,
            bool(prefix),
            upper is not None,
            after is not None,
            limit is not None,
            scopes is not None,
            scopes_upper is not None,
        )
        prepared = self._lists.get(shape)
        if prepared is None:
            prepared = self._lists[shape] = _Prepared(self.fast, _list_statement(*shape))
        values: dict[str, Any] = {"now": now}
        if scope is not None:
            values["w_scope"] = scope
        if prefix:
            values["lo"] = prefix
        if upper is not None:
            values["hi"] = upper
        if after is not None:
            values["after_scope"], values["after_key"] = after
        if limit is not None:
            values["limit"] = limit
        if scopes is not None:
            values["scope_lo"] = scopes
        if scopes_upper is not None:
            values["scope_hi"] = scopes_upper
        rows = self.fast.run(partial(_fetch_all, prepared.sql, prepared.args(values)), write=False)
        return [StateEntry(*prepared.decode(row)) for row in rows]

    def _list_after_key(
        self,
        scope: str,
        prefix: str,
        upper: str | None,
        limit: int | None,
        after_key: str,
        now: datetime,
    ) -> list[StateEntry]:
        shape = (upper is not None, limit is not None)
        prepared = self._after_key.get(shape)
        if prepared is None:
            stmt = sa.select(*_ENTRY).where(
                _LIVE,
                state.c.scope == _SCOPE,
                state.c.key > sa.bindparam("lo", type_=state.c.key.type),
            )
            if upper is not None:
                stmt = stmt.where(state.c.key < sa.bindparam("hi", type_=state.c.key.type))
            stmt = stmt.order_by(state.c.scope, state.c.key)
            if limit is not None:
                stmt = stmt.limit(sa.bindparam("limit", type_=sa.BigInteger()))
            prepared = self._after_key[shape] = _Prepared(self.fast, stmt)
        values: dict[str, Any] = {"now": now, "w_scope": scope, "lo": after_key}
        if upper is not None:
            values["hi"] = upper
        if limit is not None:
            values["limit"] = limit
        rows = self.fast.run(partial(_fetch_all, prepared.sql, prepared.args(values)), write=False)
        return [StateEntry(*prepared.decode(row)) for row in rows]

    # -- writes (the caller's ``decide`` runs inside the transaction) ----------------------
    def write(
        self,
        scope: str,
        key: str,
        decide: Callable[[Any], tuple[StateEntry, str | None]],
    ) -> StateEntry:
        """Lock the row, let ``decide(row)`` pick the entry (raising to refuse), store it.

        ``decide`` gets ``(value, version, expires_at, write_token, updated_at)`` or None
        and returns (the entry, the token to store), or (the stored entry, None) when
        nothing is to be written (a re-sent write that landed already)."""
        return self.fast.run(partial(self._write, scope, key, decide), write=True)

    def _write(
        self,
        scope: str,
        key: str,
        decide: Callable[[Any], tuple[StateEntry, str | None]],
        cursor: Any,
    ) -> StateEntry:
        locked = self._locked
        cursor.execute(locked.sql, locked.args({"w_scope": scope, "w_key": key}))
        found = cursor.fetchone()
        row = None if found is None else locked.decode(found)
        entry, token = decide(row)
        if token is None:
            return entry
        values = {
            "value": entry.value,
            "version": entry.version,
            "expires_at": entry.expires_at,
            "updated_at": entry.updated_at,
            "write_token": token,
        }
        if row is not None:
            update = self._update
            sql, args = update.sql, update.args({**values, "w_scope": scope, "w_key": key})
        else:
            insert = self._insert
            sql, args = insert.sql, insert.args({**values, "scope": scope, "key": key})
        self._check(args)
        cursor.execute(sql, args)
        return entry

    def _check(self, args: Any) -> None:
        """Hand the largest text value of a statement's arguments to ``check_size``."""
        if self._check_size is None:
            return
        values = args.values() if isinstance(args, dict) else args
        self._check_size(max((len(v) for v in values if isinstance(v, (str, bytes))), default=0))

    def set_at_once(
        self, entry: StateEntry, expected_version: int | None, token: str
    ) -> StateEntry | None:
        """PostgreSQL: ``entry`` written in one statement if its conditions hold (the
        stored version is assigned here), else None and nothing written."""
        codec = self.fast.codec
        values: dict[str, Any] = {
            "scope": entry.scope,
            "key": entry.key,
            "value": codec.json_dumps(entry.value),
            "expires": None if entry.expires_at is None else codec.ts_bind(entry.expires_at),
            "now": codec.ts_bind(entry.updated_at),
            "token": token,
        }
        if expected_version is None:
            sql = _PG_SET_ANY
        elif expected_version == 0:
            sql = _PG_SET_NEW
        else:
            sql, values["expected"] = _PG_SET_IF, expected_version
        row = self.fast.run(partial(_fetch_one, sql, values), write=True, single=True)
        if row is None:
            return None
        return StateEntry(
            entry.scope, entry.key, entry.value, int(row[0]), entry.expires_at, entry.updated_at
        )

    def put(self, entries: Sequence[StateEntry]) -> None:
        """Upsert ``entries`` exactly as given, in one transaction (one executemany; on
        PostgreSQL one statement)."""
        if self.one_statement:
            self._put_pg(entries)
            return
        upsert = self._upsert
        rows = [
            upsert.args(
                {
                    "scope": e.scope,
                    "key": e.key,
                    "value": e.value,
                    "version": e.version,
                    "expires_at": e.expires_at,
                    "updated_at": e.updated_at,
                    "write_token": None,
                }
            )
            for e in entries
        ]
        for row in rows:
            self._check(row)
        self.fast.run(partial(_execute, upsert.sql, rows), write=True)

    def _put_pg(self, entries: Sequence[StateEntry]) -> None:
        codec = self.fast.codec
        ts, dumps = codec.ts_bind, codec.json_dumps
        values = {
            "scopes": [e.scope for e in entries],
            "keys": [e.key for e in entries],
            "values": [dumps(e.value) for e in entries],
            "versions": [e.version for e in entries],
            "expires": [None if e.expires_at is None else ts(e.expires_at) for e in entries],
            "updated": [ts(e.updated_at) for e in entries],
            "tokens": [None] * len(entries),
        }
        self.fast.run(partial(_execute, _PG_PUT, [values]), write=True, single=True)


def _fetch_one(sql: str, args: Any, cursor: Any) -> Any:
    cursor.execute(sql, args)
    return cursor.fetchone()


def _fetch_all(sql: str, args: Any, cursor: Any) -> list[Any]:
    cursor.execute(sql, args)
    return list(cursor.fetchall())


def _execute(sql: str, rows: list[Any], cursor: Any) -> None:
    """One statement, or one executemany for several rows of arguments."""
    if len(rows) == 1:
        cursor.execute(sql, rows[0])
    else:
        cursor.executemany(sql, rows)


def _where() -> sa.ColumnElement[bool]:
    return sa.and_(state.c.scope == _SCOPE, state.c.key == _KEY)


def _list_statement(
    scoped: bool,
    prefixed: bool,
    bounded: bool,
    after: bool,
    limited: bool,
    scopes_from: bool = False,
    scopes_below: bool = False,
) -> sa.Select[Any]:
    stmt = sa.select(*_ENTRY).where(_LIVE)
    if scoped:
        stmt = stmt.where(state.c.scope == _SCOPE)
    if scopes_from:
        stmt = stmt.where(state.c.scope >= sa.bindparam("scope_lo", type_=state.c.scope.type))
    if scopes_below:
        stmt = stmt.where(state.c.scope < sa.bindparam("scope_hi", type_=state.c.scope.type))
    if prefixed:
        stmt = stmt.where(state.c.key >= sa.bindparam("lo", type_=state.c.key.type))
    if bounded:
        stmt = stmt.where(state.c.key < sa.bindparam("hi", type_=state.c.key.type))
    if after:
        after_scope = sa.bindparam("after_scope", type_=state.c.scope.type)
        after_key = sa.bindparam("after_key", type_=state.c.key.type)
        stmt = stmt.where(
            sa.or_(
                state.c.scope > after_scope,
                sa.and_(state.c.scope == after_scope, state.c.key > after_key),
            )
        )
    stmt = stmt.order_by(state.c.scope, state.c.key)
    if limited:
        stmt = stmt.limit(sa.bindparam("limit", type_=sa.BigInteger()))
    return stmt
