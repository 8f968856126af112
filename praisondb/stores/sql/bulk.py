"""Bulk writes of messages kept as given: ``put_messages`` and ``put_session_batch``.

Both run as one transaction on a SQLAlchemy connection (so races, retries and error
translation are the store's usual ones); the rows themselves go through the driver's
fastest path on the same connection: PostgreSQL binary ``COPY``, one ``executemany``
on SQLite and MySQL/MariaDB (PyMySQL turns it into multi-row INSERTs). Under the async
face COPY runs on psycopg's AsyncConnection, each of its awaits handed to the loop
(``await_only``), with the same rows.

A plain INSERT (or COPY) is sound because every row is proven fresh first, under the
session row's lock (``SELECT ... FOR UPDATE``; SQLite's ``BEGIN IMMEDIATE``), which every
writer of a session's messages takes:

- a session that does not exist yet has no messages (the foreign key), so nothing
  needs checking; a concurrent creator makes our INSERT of the session row fail with a
  unique violation, and the store re-runs the whole transaction;
- a session with no messages (``message_count`` 0) needs no check either;
- otherwise one indexed query finds the ids already stored (skipped), and a second
  looks for seq clashes only when some fresh seq is not above the stored ``last_seq``
  (everything stored is at or below it, so the common append-at-the-end case skips it).

Duplicates inside one call are resolved in Python: a repeated id is skipped, a seq
given to two ids is a Conflict. The session counters are then written once per
session, with values computed from what was counted, never by re-counting the table.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ...codec import to_values
from ...errors import Conflict, NotFound
from ...model import Message, SessionInfo
from .._kit import chunks
from .fastpath import FastPath
from .schema import messages, sessions
from .types import json_dumps, pg_json_bytes

T = TypeVar("T")

CHUNK = 500
"""Rows per IN (...) list; well below every dialect's parameter limit."""

_PG_COPY = (
    "COPY praisondb_messages (session_id, seq, id, role, content_kind, content, metadata, "
    "run_id, created_at) FROM STDIN (FORMAT BINARY)"
)
_PG_COPY_TYPES = ("text", "int8", "text", "text", "int2", "text", "bytea", "text", "timestamptz")
"""Binary COPY sends no type names, only each field's bytes: a jsonb field is the byte 1
(the format version) followed by the JSON text, which the bytea dumper passes verbatim
(cheaper than psycopg's Jsonb wrapper, ~0.7 us a row)."""
_JSONB_V1 = b"\x01"

_POSITIONAL_INSERT = (
    "INSERT INTO praisondb_messages (session_id, seq, id, role, content_kind, content, "
    "metadata, run_id, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
"""PyMySQL turns an executemany of this into multi-row INSERTs (tuples, no dicts)."""

_COUNTERS = sa.bindparam("b_id", type_=sessions.c.id.type)


@dataclass
class _Item:
    """One session's share of a call: its record (None for put_messages) and messages."""

    session_id: str
    info: SessionInfo | None
    messages: Sequence[Message]


@dataclass
class _Plan:
    item: _Item
    stored: tuple[int, int] | None
    """(last_seq, message_count) of the locked session row, None if it does not exist."""
    fresh: list[Message]


def session_values(info: SessionInfo) -> dict[str, Any]:
    """The sessions row of ``info``: the codec's record (one column per field), with the
    indexed ``updated_floor`` equal to ``updated_at`` (see the sessions table)."""
    values = to_values(info)
    values["updated_floor"] = values["updated_at"]
    return values


class BulkWriter:
    """put_messages / put_session_batch for one store; call inside a write transaction."""

    def __init__(self, fast: FastPath) -> None:
        self.fast = fast
        self.name = fast.name
        self.codec = fast.codec
        self._copy = self._copy_pg_async if fast.is_async else self._copy_pg
        self._update_full = (
            sessions.update()
            .where(sessions.c.id == _COUNTERS)
            .values(
                {c.name: sa.bindparam(c.name, type_=c.type) for c in sessions.c if c.name != "id"}
            )
        )
        self._update_counters = (
            sessions.update()
            .where(sessions.c.id == _COUNTERS)
            .values(
                last_seq=sa.bindparam("last_seq", type_=sa.BigInteger()),
                message_count=sa.bindparam("message_count", type_=sa.BigInteger()),
            )
        )

    # -- entry points --------------------------------------------------------------------
    def put_messages(self, conn: Connection, session_id: str, batch: Sequence[Message]) -> int:
        return self._round(conn, [_Item(session_id, None, batch)])

    def put_session_batch(
        self, conn: Connection, items: Sequence[tuple[SessionInfo, Sequence[Message]]]
    ) -> int:
        """A session named twice is applied in order: its later items see the earlier ones."""
        rounds: list[list[_Item]] = []
        seen: dict[str, int] = {}
        for info, batch in items:
            index = seen.get(info.id, 0)
            seen[info.id] = index + 1
            if index == len(rounds):
                rounds.append([])
            rounds[index].append(_Item(info.id, info, batch))
        return sum(self._round(conn, group) for group in rounds)

    # -- one round: distinct sessions ---------------------------------------------------------
    def _round(self, conn: Connection, items: list[_Item]) -> int:
        stored = self._lock_sessions(conn, [item.session_id for item in items])
        plans = []
        for item in items:
            have = stored.get(item.session_id)
            if have is None and item.info is None:
                raise NotFound(f"session {item.session_id!r} not found")
            plans.append(_Plan(item, have, self._fresh(conn, item, have)))
        self._write_sessions(conn, plans)
        fresh = [(plan.item.session_id, m) for plan in plans for m in plan.fresh]
        if fresh:
            self._insert(conn, fresh)
        return len(fresh)

    def _lock_sessions(self, conn: Connection, ids: list[str]) -> dict[str, tuple[int, int]]:
        found: dict[str, tuple[int, int]] = {}
        for chunk in chunks(ids, CHUNK):
            rows = conn.execute(
                sa.select(sessions.c.id, sessions.c.last_seq, sessions.c.message_count)
                .where(sessions.c.id.in_(chunk))
                .with_for_update()
            )
            found.update((sid, (int(last), int(count))) for sid, last, count in rows)
        return found

    def _fresh(self, conn: Connection, item: _Item, have: tuple[int, int] | None) -> list[Message]:
        """The item's messages not stored yet; Conflict if a seq is held by another id."""
        sid = item.session_id
        ids: set[str] = set()
        holders: dict[int, str] = {}
        unique: list[Message] = []
        for message in item.messages:
            if message.id in ids:
                continue  # repeated in this call: idempotent, like a re-run
            ids.add(message.id)
            holder = holders.setdefault(message.seq, message.id)
            if holder != message.id:
                raise Conflict(
                    f"seq {message.seq} of session {sid!r} is given to {holder!r} and {message.id!r}"
                )
            unique.append(message)
        if have is None or have[1] == 0 or not unique:
            return unique
        known: set[str] = set()
        for chunk in chunks([m.id for m in unique], CHUNK):
            known.update(
                conn.execute(
                    sa.select(messages.c.id).where(
                        messages.c.session_id == sid, messages.c.id.in_(chunk)
                    )
                ).scalars()
            )
        fresh = [m for m in unique if m.id not in known] if known else unique
        below = [m.seq for m in fresh if m.seq <= have[0]]
        for seqs in chunks(below, CHUNK):
            clash = conn.execute(
                sa.select(messages.c.seq, messages.c.id)
                .where(messages.c.session_id == sid, messages.c.seq.in_(seqs))
                .limit(1)
            ).first()
            if clash is not None:
                raise Conflict(f"seq {clash[0]} of session {sid!r} is held by {clash[1]!r}")
        return fresh

    def _write_sessions(self, conn: Connection, plans: list[_Plan]) -> None:
        """Session rows with their final counters (new rows before their messages: the FK)."""
        created: list[dict[str, Any]] = []
        replaced: list[dict[str, Any]] = []
        counted: list[dict[str, Any]] = []
        for plan in plans:
            top = max((m.seq for m in plan.fresh), default=0)
            last, count = plan.stored or (0, 0)
            info = plan.item.info
            if info is None:
                if plan.fresh:
                    counted.append(
                        {
                            "b_id": plan.item.session_id,
                            "last_seq": max(last, top),
                            "message_count": count + len(plan.fresh),
                        }
                    )
                continue
            values = session_values(info)
            values["message_count"] = count + len(plan.fresh)
            values["last_seq"] = max(info.last_seq, last, top)
            if plan.stored is None:
                created.append(values)
            else:
                values["b_id"] = values.pop("id")
                replaced.append(values)
        if created:
            conn.execute(sessions.insert(), created)
        if replaced:
            conn.execute(self._update_full, replaced)
        if counted:
            conn.execute(self._update_counters, counted)

    # -- the rows ------------------------------------------------------------------------------
    def _insert(self, conn: Connection, rows: list[tuple[str, Message]]) -> None:
        if self.name == "postgresql":
            self.fast.run_on(conn, lambda raw: self._copy(raw, rows))
            return
        text, dumps, ts = self.codec.text_bind, self.codec.json_dumps, self.codec.ts_bind
        values: list[Any] = [
            (
                sid,
                m.seq,
                m.id,
                m.role,
                0 if isinstance(m.content, str) else 1,
                text(m.content if isinstance(m.content, str) else json_dumps(m.content)),
                dumps(m.metadata),
                m.run_id,
                ts(m.created_at),
            )
            for sid, m in rows
        ]
        insert = self.fast.insert_statement
        sql = insert.sql
        if insert.order is None:  # PyMySQL: positional %s, which also takes tuples
            sql = _POSITIONAL_INSERT
        conn.exec_driver_sql(sql, values)

    def _copy_pg(self, raw: Any, rows: list[tuple[str, Message]]) -> None:
        with raw.cursor() as cursor, cursor.copy(_PG_COPY) as copy:
            copy.set_types(_PG_COPY_TYPES)
            write = copy.write_row
            for row in self._copy_rows(rows):
                write(row)

    def _copy_pg_async(self, raw: Any, rows: list[tuple[str, Message]]) -> None:
        """The same COPY on psycopg's AsyncConnection (the async face's greenlet waits)."""
        from sqlalchemy.util.concurrency import await_only

        async def copy_rows() -> None:
            async with raw.cursor() as cursor, cursor.copy(_PG_COPY) as copy:
                copy.set_types(_PG_COPY_TYPES)
                for row in self._copy_rows(rows):
                    await copy.write_row(row)

        await_only(copy_rows())

    def _copy_rows(self, rows: list[tuple[str, Message]]) -> Iterator[tuple[Any, ...]]:
        """COPY's binary rows, in _PG_COPY's column order."""
        text, ts, dumps = self.codec.text_bind, self.codec.ts_bind, pg_json_bytes
        for sid, m in rows:
            content = m.content
            if isinstance(content, str):
                kind, body = 0, text(content)
            else:  # blocks: JSON text in a text column, then text escaping
                kind, body = 1, text(json_dumps(content))
            yield (
                sid,
                m.seq,
                m.id,
                m.role,
                kind,
                body,
                _JSONB_V1 + dumps(m.metadata),
                m.run_id,
                ts(m.created_at),
            )
