"""SQL backend (SQLite, PostgreSQL, MySQL/MariaDB) through SQLAlchemy 2 Core.

One store serves both protocols (conversations and state). The schema comes only from the
Alembic migrations (see :mod:`praisondb.stores.sql.migrate`); dialect differences live in
:mod:`.types`, :mod:`.engine`, :mod:`.errors`, :mod:`.statements` and
:mod:`.packets`; the tables in :mod:`.schema`.

Concurrency: a session row holds ``last_seq`` and ``message_count``. Appending bumps them
and inserts the messages in one transaction, so the row lock serialises writers of one
session and seq stays gap-free across threads and processes, at a cost independent of
the session's length. ``last_seq`` is a high-water mark: deletes never lower it, so a
seq is never handed out twice. The exact ``updated_at`` is unindexed; the filters on it
go through the indexed ``updated_floor`` (see the sessions table).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ...errors import ConfigError, Conflict, NotFound, ValidationError
from ...model import JSON, Message, Page, SessionInfo, StateEntry, utcnow
from ...retry import Retry, driver_text
from ...urls import StoreURL
from ..base import (
    UNSET,
    Capability,
    SessionQuery,
    decode_session_cursor,
    merge_metadata,
    session_cursor,
)
from . import migrate
from .bulk import BulkWriter, session_values
from .engine import WRITE, connection_guard, create_engine, is_memory_sqlite, parse_options
from .fastpath import FastPath
from .items import SQLItemsMixin, id_range
from .memories import SQLMemoriesMixin
from .packets import PACKET_CHECK_FROM, PACKET_OVERHEAD, message_bytes, packet_too_large
from .schema import FLOOR_LAG, checkpoints, messages, runs, sessions, spans
from .state import SQLState
from .types import MYSQL

T = TypeVar("T")

_SID = sa.bindparam("sid", type_=sessions.c.id.type)
_SESSION_COLUMNS = (
    sessions.c.id,
    sessions.c.user_id,
    sessions.c.agent,
    sessions.c.title,
    sessions.c.metadata,
    sessions.c.parent_id,
    sessions.c.forked_at_seq,
    sessions.c.created_at,
    sessions.c.updated_at,
    sessions.c.message_count,
    sessions.c.last_seq,
)


def _session(row: Any) -> SessionInfo:
    return SessionInfo(*row)


def _require_greenlet(url: StoreURL) -> None:
    """An async store does its I/O by handing awaits to the loop from a greenlet: opened
    anywhere else it could not run a single statement."""
    from sqlalchemy.util.concurrency import in_greenlet

    try:
        inside = in_greenlet()
    except ImportError:  # SQLAlchemy imports greenlet on first use
        raise ConfigError(
            f"{url.redacted} needs greenlet for the async face, which is not installed; "
            "run: pip install 'praisondb[async]'"
        ) from None
    if not inside:
        raise ConfigError(
            f"{url.redacted}: a store on the async driver runs only inside the async face; "
            "open it through praisondb.aio.AsyncPraisonDB (or PraisonDB, without io)"
        )


class SQLStore(SQLMemoriesMixin, SQLItemsMixin):
    """Conversations and state in one SQL database."""

    capabilities: frozenset[Capability] = frozenset(
        {Capability.PERSISTENT, Capability.MULTI_PROCESS}
    )
    """What a server or an SQLite file promises; an instance on an in-memory SQLite URL
    narrows it to nothing (it lives and dies with one process)."""
    async_io = "driver"
    """``io="async"``: the same store on SQLAlchemy's async engine (see :mod:`.engine`)."""

    def __init__(self, url: StoreURL, *, io: str = "sync", **options: Any) -> None:
        self.url = url
        settings = parse_options(url, options)
        if io == "async":
            _require_greenlet(url)
        if is_memory_sqlite(url):
            self.capabilities = frozenset()
        self._engine = create_engine(url, settings, io=io)
        self._dialect = self._engine.dialect.name
        self._write = {WRITE: True} if self._dialect == "sqlite" else {}
        self._guard = connection_guard(url, io)
        self._retry = Retry()
        self._max_packet: int | None = None
        try:
            self._call(
                lambda: migrate.ensure_schema(
                    self._engine, url, auto_migrate=settings.auto_migrate
                ),
                action="open",
            )
        except TypeError as exc:  # the DBAPI's connect() refused a keyword from the URL query
            self._engine.dispose()
            raise ConfigError(
                f"the database driver refused an option of {url.redacted}: "
                f"{driver_text(exc, url.secret)}; remove it from the URL (praisondb's own "
                "options are listed in README's URL section)"
            ) from None
        except BaseException:
            self._engine.dispose()
            raise
        one_writer = io == "async" and self._dialect == "sqlite" and not is_memory_sqlite(url)
        self._fast = FastPath(self._engine, self._serialize_writes() if one_writer else None)
        self._bulk = BulkWriter(self._fast)
        self._state = SQLState(
            self._tx,
            self._dialect,
            self._call,
            self._fast,
            self._check_packet_size if self._dialect in MYSQL else None,
        )

    # -- sessions -------------------------------------------------------------
    def create_session(self, info: SessionInfo) -> SessionInfo:
        values = session_values(info)
        values["message_count"] = values["last_seq"] = 0

        def insert(conn: Connection) -> None:
            conn.execute(sessions.insert(), values)

        try:
            self._tx(insert, write=True, action="create_session")
        except Conflict:
            raise Conflict(f"session {info.id!r} already exists") from None
        del values["updated_floor"]
        return SessionInfo(**values)

    def put_session(self, info: SessionInfo) -> None:
        values = session_values(info)

        def put(conn: Connection) -> None:
            existing = conn.execute(
                sa.select(sessions.c.last_seq).where(sessions.c.id == info.id).with_for_update()
            ).first()
            count, top = conn.execute(
                sa.select(sa.func.count(), sa.func.max(messages.c.seq)).where(
                    messages.c.session_id == info.id
                )
            ).one()
            values["message_count"] = count
            values["last_seq"] = max(
                info.last_seq, existing[0] if existing else 0, top if top is not None else 0
            )
            if existing is None:
                conn.execute(sessions.insert(), values)
            else:
                conn.execute(sessions.update().where(sessions.c.id == info.id), values)

        self._tx(put, write=True, action="put_session", races=3)

    def get_session(self, session_id: str) -> SessionInfo:
        rows = self._rows(
            "session",
            lambda: sa.select(*_SESSION_COLUMNS).where(sessions.c.id == _SID),
            {"sid": session_id},
        )
        if not rows:
            raise NotFound(f"session {session_id!r} not found")
        return _session(rows[0])

    @staticmethod
    def _session_filters(query: SessionQuery) -> list[sa.ColumnElement[bool]]:
        where: list[sa.ColumnElement[bool]] = []
        if query.user_id is not None:
            where.append(sessions.c.user_id == query.user_id)
        if query.agent is not None:
            where.append(sessions.c.agent == query.agent)
        if query.parent_id is not None:
            where.append(sessions.c.parent_id == query.parent_id)
        # ranges on the primary key: bound values, no LIKE to escape
        where.extend(id_range(sessions.c.id, query.id_prefix, query.exclude_id_prefix))
        # The index range is on updated_floor, which trails updated_at by at most
        # FLOOR_LAG and never exceeds it; the exact test on updated_at keeps the rest.
        if query.updated_after is not None:
            where.append(sessions.c.updated_floor >= query.updated_after - FLOOR_LAG)
            where.append(sessions.c.updated_at >= query.updated_after)
        if query.updated_before is not None:
            where.append(sessions.c.updated_floor < query.updated_before)
            where.append(sessions.c.updated_at < query.updated_before)
        return where

    def list_sessions(self, query: SessionQuery) -> Page[SessionInfo]:
        stmt = self._session_listing(query)
        rows = self._tx(lambda conn: conn.execute(stmt).all(), action="list_sessions")
        items = [_session(row) for row in rows[: query.limit]]
        more = len(rows) > query.limit
        return Page(items, session_cursor(items[-1]) if more and items else None)

    def _session_listing(self, query: SessionQuery) -> sa.Select[Any]:
        """The statement of one page of ``list_sessions`` (and its look-ahead row)."""
        where = self._session_filters(query)
        if query.cursor:
            created, last_id = decode_session_cursor(query.cursor)
            where.append(
                sa.or_(
                    sessions.c.created_at < created,
                    sa.and_(sessions.c.created_at == created, sessions.c.id < last_id),
                )
            )
        stmt = (
            sa.select(*_SESSION_COLUMNS)
            .where(*where)
            .order_by(sessions.c.created_at.desc(), sessions.c.id.desc())
            .limit(query.limit + 1)
        )
        return stmt

    def count_sessions(self, query: SessionQuery) -> int:
        stmt = sa.select(sa.func.count()).select_from(sessions).where(*self._session_filters(query))
        return int(self._tx(lambda conn: conn.execute(stmt).scalar_one(), action="count_sessions"))

    def update_session(
        self,
        session_id: str,
        *,
        title: str | None = UNSET,
        metadata: dict[str, Any] | None = None,
        replace_metadata: bool = False,
    ) -> SessionInfo:
        def update(conn: Connection) -> SessionInfo:
            row = conn.execute(
                sa.select(*_SESSION_COLUMNS).where(sessions.c.id == session_id).with_for_update()
            ).first()
            if row is None:
                raise NotFound(f"session {session_id!r} not found")
            info = _session(row)
            if title is not UNSET:
                info.title = title
            info.metadata = merge_metadata(info.metadata, metadata, replace_metadata)
            info.updated_at = max(utcnow(), info.updated_at)
            conn.execute(
                sessions.update()
                .where(sessions.c.id == session_id)
                .values(
                    title=info.title,
                    metadata=info.metadata,
                    updated_at=info.updated_at,
                    updated_floor=info.updated_at,
                )
            )
            return info

        return self._tx(update, write=True, action="update_session")

    def delete_session(self, session_id: str) -> bool:
        def delete(conn: Connection) -> bool:
            # Messages go with the session row (ON DELETE CASCADE); the rest by hand, since
            # runs, spans and checkpoints may name sessions that were never stored.
            if not conn.execute(sessions.delete().where(sessions.c.id == session_id)).rowcount:
                return False
            for table in (runs, spans, checkpoints):
                conn.execute(table.delete().where(table.c.session_id == session_id))
            return True

        return self._tx(delete, write=True, action="delete_session")

    # -- messages -------------------------------------------------------------
    def _check_packet(self, batch: Sequence[Message]) -> None:
        """MySQL/MariaDB drop the connection on a statement over ``max_allowed_packet``
        (or refuse it with error 1153): check first, so the caller gets a ValidationError
        naming the limit instead of retries and "is the server up?"."""
        if self._dialect not in MYSQL:
            return
        self._check_packet_size(message_bytes(batch))

    def _check_packet_size(self, size: int) -> None:
        """``_check_packet`` for one value of ``size`` bytes (MySQL/MariaDB only)."""
        if size < PACKET_CHECK_FROM:
            return
        if self._max_packet is None:
            self._max_packet = int(
                self._tx(
                    lambda conn: conn.execute(sa.text("SELECT @@max_allowed_packet")).scalar_one(),
                    action="max_allowed_packet",
                )
            )
        if size + PACKET_OVERHEAD > self._max_packet:
            raise ValidationError(packet_too_large(self.url, size, self._max_packet))

    def append_messages(self, session_id: str, messages_: Sequence[Message]) -> list[Message]:
        batch = list(messages_)
        self._check_packet(batch)
        now = utcnow()
        try:
            base = self._call(
                lambda: self._fast.append(session_id, batch, now), action="append_messages"
            )
        except Conflict:
            raise Conflict(
                f"a message id in this batch already exists in session {session_id!r}"
            ) from None
        if base is None:
            raise NotFound(f"session {session_id!r} not found")
        for seq, message in enumerate(batch, base + 1):
            message.seq = seq
            message.session_id = session_id
        return batch

    def put_messages(self, session_id: str, messages_: Sequence[Message]) -> int:
        batch = list(messages_)
        self._check_packet(batch)
        return self._tx(
            lambda conn: self._bulk.put_messages(conn, session_id, batch),
            write=True,
            action="put_messages",
            races=2,
        )

    def put_session_batch(self, items: Sequence[tuple[SessionInfo, Sequence[Message]]]) -> int:
        """Many whole sessions in one transaction (see :mod:`.sql_bulk`); transfer's fast path."""
        batch = list(items)
        self._check_packet([message for _, messages_ in batch for message in messages_])
        return self._tx(
            lambda conn: self._bulk.put_session_batch(conn, batch),
            write=True,
            action="put_session_batch",
            races=2,
        )

    def list_messages(
        self,
        session_id: str,
        *,
        after_seq: int | None = None,
        before_seq: int | None = None,
        last: int | None = None,
        limit: int | None = None,
    ) -> list[Message]:
        if (last is not None and last <= 0) or (limit is not None and limit <= 0):
            return []
        found = self._call(
            lambda: self._fast.load(
                session_id, after_seq=after_seq, before_seq=before_seq, newest=last, limit=limit
            ),
            action="list_messages",
        )
        return found if last is None or limit is None else found[:limit]

    def wire_rows(
        self, session_id: str, *, after_seq: int | None, before_seq: int | None, limit: int
    ) -> list[tuple[Any, ...]] | None:
        """A server listing's rows, JSON unparsed; None where only messages are read
        (see :meth:`.FastPath.wire_rows`)."""
        return self._call(
            lambda: self._fast.wire_rows(
                session_id, after_seq=after_seq, before_seq=before_seq, limit=limit
            ),
            action="list_messages",
        )

    def get_messages(self, session_id: str, ids: Sequence[str]) -> list[Message]:
        """Find the seqs by id, then load that seq range on the fast path and keep the ids."""
        wanted = set(ids)
        if not wanted:
            return []
        query = sa.select(messages.c.seq).where(
            messages.c.session_id == session_id, messages.c.id.in_(sorted(wanted))
        )
        seqs = self._tx(lambda conn: list(conn.execute(query).scalars()), action="get_messages")
        if not seqs:
            return []
        found = self.list_messages(session_id, after_seq=min(seqs) - 1, before_seq=max(seqs) + 1)
        return [m for m in found if m.id in wanted]

    def count_messages(self, session_id: str) -> int:
        count = self._tx(
            lambda conn: conn.execute(
                sa.select(sessions.c.message_count).where(sessions.c.id == session_id)
            ).scalar(),
            action="count_messages",
        )
        return int(count or 0)

    def delete_messages(
        self, session_id: str, *, from_seq: int | None = None, to_seq: int | None = None
    ) -> int:
        def delete(conn: Connection) -> int:
            session = conn.execute(
                sa.select(sessions.c.updated_at)
                .where(sessions.c.id == session_id)
                .with_for_update()
            ).first()
            if session is None:
                return 0
            stmt = messages.delete().where(messages.c.session_id == session_id)
            if from_seq is not None:
                stmt = stmt.where(messages.c.seq >= from_seq)
            if to_seq is not None:
                stmt = stmt.where(messages.c.seq <= to_seq)
            removed = int(conn.execute(stmt).rowcount)
            if removed:
                updated = max(utcnow(), session[0])
                conn.execute(
                    sessions.update()
                    .where(sessions.c.id == session_id)
                    .values(
                        message_count=sessions.c.message_count - removed,
                        updated_at=updated,
                        updated_floor=updated,
                    )
                )
            return removed

        return self._tx(delete, write=True, action="delete_messages")

    # -- state (see sql_state.py) ------------------------------------------------
    def get_entry(self, scope: str, key: str) -> StateEntry | None:
        return self._state.get_entry(scope, key)

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
        return self._state.set_entry(
            scope,
            key,
            value,
            expires_at=expires_at,
            expected_version=expected_version,
            write_token=write_token,
        )

    def delete_entry(self, scope: str, key: str, *, expected_version: int | None = None) -> bool:
        return self._state.delete_entry(scope, key, expected_version=expected_version)

    def incr(
        self, scope: str, key: str, amount: int = 1, *, expires_at: datetime | None = None
    ) -> int:
        return self._state.incr(scope, key, amount, expires_at=expires_at)

    def list_entries(
        self,
        scope: str | None = None,
        prefix: str = "",
        *,
        limit: int | None = None,
        after: tuple[str, str] | None = None,
        scope_prefix: str = "",
    ) -> list[StateEntry]:
        return self._state.list_entries(
            scope, prefix, limit=limit, after=after, scope_prefix=scope_prefix
        )

    def delete_scope(self, scope: str) -> int:
        return self._state.delete_scope(scope)

    def put_entries(self, entries: Iterable[StateEntry]) -> None:
        self._state.put_entries(entries)
