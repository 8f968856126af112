"""Long-term memories in SQL: adds with eviction, listing, and full-text search.

A scope's writers take turns on its ``praisondb_memory_scopes`` row: the add upserts
it with a no-op update, which locks it (PostgreSQL and MySQL/MariaDB row lock; on
SQLite the transaction already holds the database's write lock, ``BEGIN IMMEDIATE``).
Under that lock the add reads the exact count kept in the row, inserts the item and
deletes the lowest (quality, created_at, id) past ``max_items``, all in one transaction:
whatever the interleaving of threads and processes, the survivors are a serial run's.
Full-text search lives in :mod:`.fulltext`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Connection

from ...core.ranking import query_terms
from ...errors import Conflict, NotFound
from ...model import MemoryItem, Page
from .._kit import chunks
from ..base import decode_session_cursor, encode_cursor
from . import pgsearch
from .core import SQLCore
from .fulltext import MEMORY_COLUMNS, engine_query, search_statement
from .schema import memories, memory_scopes
from .types import MYSQL

_COMPARED = ("scope", "owner", "text", "importance", "relevance", "quality", "metadata")

# Built once: an add runs six statements, and building them per call cost more than
# running them.
_SCOPE = sa.bindparam("s", type_=memory_scopes.c.scope.type)
_OWNER = sa.bindparam("o", type_=memory_scopes.c.owner.type)
_ID = sa.bindparam("id", type_=memories.c.id.type)
_IN_SCOPE = (memories.c.scope == _SCOPE, memories.c.owner == _OWNER)
_SCOPE_ROW = (memory_scopes.c.scope == _SCOPE, memory_scopes.c.owner == _OWNER)
_COUNT = sa.select(memory_scopes.c.count).where(*_SCOPE_ROW)
_SET_COUNT = memory_scopes.update().where(*_SCOPE_ROW).values(count=sa.bindparam("n"))
_STORED = sa.select(*MEMORY_COLUMNS).where(memories.c.id == _ID)
_INSERT = memories.insert()
_LOWEST = (
    sa.select(memories.c.num, memories.c.id)
    .where(*_IN_SCOPE)
    .order_by(memories.c.quality, memories.c.created_at, memories.c.id)
    .limit(sa.bindparam("limit", type_=sa.BigInteger()))
)
_DELETE_NUMS = memories.delete().where(
    memories.c.num.in_(sa.bindparam("nums", expanding=True, type_=memories.c.num.type))
)


@functools.cache
def _lock_statement(dialect: str) -> sa.Executable:
    """Upsert the (scope, owner) row with a no-op update: either way the row is locked."""
    keep = {"count": memory_scopes.c.count}
    values = {"scope": _SCOPE, "owner": _OWNER, "count": 0}
    if dialect in MYSQL:
        return mysql.insert(memory_scopes).values(values).on_duplicate_key_update(keep)
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert(memory_scopes)
        .values(values)
        .on_conflict_do_update(index_elements=["scope", "owner"], set_=keep)
    )


def memory_item(row: Sequence[Any]) -> MemoryItem:
    """A MemoryItem from a row of :data:`.fulltext.MEMORY_COLUMNS`."""
    memory_id, scope, owner, text, importance, relevance, quality, meta, embedding, created = row[
        :10
    ]
    return MemoryItem(
        text=text,
        scope=scope,
        owner=owner,
        importance=importance,
        relevance=relevance,
        quality=quality,
        metadata=meta,
        embedding=embedding,
        id=memory_id,
        created_at=created,
    )


def memory_values(item: MemoryItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "scope": item.scope,
        "owner": item.owner,
        "text": item.text,
        "importance": float(item.importance),
        "relevance": float(item.relevance),
        "quality": float(item.quality),
        "metadata": item.metadata,
        "embedding": item.embedding,
        "created_at": item.created_at,
    }


def same_memory(stored: MemoryItem, item: MemoryItem) -> bool:
    """A re-sent add (same id) carries the same content; its timestamp may be rounded."""
    return all(getattr(stored, name) == getattr(item, name) for name in _COMPARED) and (
        stored.embedding == item.embedding
    )


class SQLMemoriesMixin(SQLCore):
    """The memories part of SQLStore (see :class:`praisondb.stores.base.MemoriesStore`)."""

    def _lock_scope(self, conn: Connection, scope: str, owner: str) -> int:
        """Lock (creating if need be) the (scope, owner) row; its memory count."""
        where = {"s": scope, "o": owner}
        conn.execute(_lock_statement(self._dialect), where)
        return int(conn.execute(_COUNT, where).scalar_one())

    @staticmethod
    def _set_count(conn: Connection, scope: str, owner: str, count: int) -> None:
        conn.execute(_SET_COUNT, {"s": scope, "o": owner, "n": count})

    @staticmethod
    def _stored(conn: Connection, memory_id: str) -> MemoryItem | None:
        row = conn.execute(_STORED, {"id": memory_id}).first()
        return None if row is None else memory_item(row)

    def add_memory(self, item: MemoryItem, *, max_items: int | None = None) -> list[str]:
        values = memory_values(item)

        def add(conn: Connection) -> list[str]:
            count = self._lock_scope(conn, item.scope, item.owner)
            stored = self._stored(conn, item.id)
            if stored is not None:
                if same_memory(stored, item):
                    return []
                raise Conflict(
                    f"memory {item.id!r} already exists with other content; add it under a new id"
                )
            conn.execute(_INSERT, values)
            count += 1
            evicted: list[str] = []
            if max_items is not None and count > max_items:
                where = {"s": item.scope, "o": item.owner, "limit": count - max_items}
                rows = conn.execute(_LOWEST, where).all()
                conn.execute(_DELETE_NUMS, {"nums": [row[0] for row in rows]})
                evicted = [row[1] for row in rows]
                count -= len(rows)
            self._set_count(conn, item.scope, item.owner, count)
            return evicted

        return self._tx(add, write=True, action="add_memory", races=3)

    def get_memory(self, memory_id: str) -> MemoryItem:
        found = self._tx(lambda conn: self._stored(conn, memory_id), action="get_memory")
        if found is None:
            raise NotFound(f"memory {memory_id!r} not found")
        return found

    @staticmethod
    def _where(scope: str | None, owner: str | None) -> list[sa.ColumnElement[bool]]:
        where = []
        if scope is not None:
            where.append(memories.c.scope == scope)
        if owner is not None:
            where.append(memories.c.owner == owner)
        return where

    def list_memories(
        self,
        scope: str | None = None,
        owner: str | None = None,
        *,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[MemoryItem]:
        where = self._where(scope, owner)
        if cursor:
            created, last_id = decode_session_cursor(cursor)
            where.append(
                sa.or_(
                    memories.c.created_at < created,
                    sa.and_(memories.c.created_at == created, memories.c.id < last_id),
                )
            )
        stmt = (
            sa.select(*MEMORY_COLUMNS)
            .where(*where)
            .order_by(memories.c.created_at.desc(), memories.c.id.desc())
        )
        if limit is not None:
            stmt = stmt.limit(limit + 1)
        rows = self._tx(lambda conn: conn.execute(stmt).all(), action="list_memories")
        items = [memory_item(row) for row in rows[:limit]]
        more = limit is not None and len(rows) > limit and bool(items)
        return Page(items, encode_cursor(items[-1].created_at, items[-1].id) if more else None)

    def count_memories(self, scope: str | None = None, owner: str | None = None) -> int:
        stmt = sa.select(sa.func.count()).select_from(memories).where(*self._where(scope, owner))
        return int(self._tx(lambda conn: conn.execute(stmt).scalar_one(), action="count_memories"))

    def delete_memory(self, memory_id: str) -> bool:
        def delete(conn: Connection) -> bool:
            found = conn.execute(
                sa.select(memories.c.scope, memories.c.owner).where(memories.c.id == memory_id)
            ).first()
            if found is None:
                return False
            count = self._lock_scope(conn, found[0], found[1])
            if not conn.execute(memories.delete().where(memories.c.id == memory_id)).rowcount:
                return False  # a concurrent delete won
            self._set_count(conn, found[0], found[1], max(count - 1, 0))
            return True

        return self._tx(delete, write=True, action="delete_memory", races=3)

    def delete_memories(self, scope: str, owner: str) -> int:
        def delete(conn: Connection) -> int:
            self._lock_scope(conn, scope, owner)
            removed = conn.execute(
                memories.delete().where(memories.c.scope == scope, memories.c.owner == owner)
            ).rowcount
            conn.execute(
                memory_scopes.delete().where(
                    memory_scopes.c.scope == scope, memory_scopes.c.owner == owner
                )
            )
            return int(removed)

        return self._tx(delete, write=True, action="delete_memories", races=3)

    def search_memories(
        self, scope: str, owner: str, query: str, *, limit: int
    ) -> list[tuple[MemoryItem, float]]:
        if limit <= 0:
            return []
        if self._dialect == "postgresql":
            terms = query_terms(query)
            if not terms:
                return []
            rows = self._tx(
                lambda conn: pgsearch.search(conn, scope, owner, terms, limit),
                action="search_memories",
            )
        else:
            bound = engine_query(self._dialect, query)
            if bound is None:
                return []
            values = {"q": bound, "scope": scope, "owner": owner, "limit": limit}
            stmt = search_statement(self._dialect)
            rows = self._tx(
                lambda conn: list(conn.execute(stmt, values).all()), action="search_memories"
            )
        return [(memory_item(row), float(row[10])) for row in rows]

    def put_memories(self, items: Sequence[MemoryItem]) -> int:
        batch = list({item.id: item for item in items}.values())  # the last of an id wins
        if not batch:
            return 0

        def put(conn: Connection, *, chunk: Sequence[MemoryItem]) -> None:
            ids = [item.id for item in chunk]
            moved = conn.execute(
                sa.select(memories.c.scope, memories.c.owner).where(memories.c.id.in_(ids))
            ).all()
            groups = sorted({(i.scope, i.owner) for i in chunk} | {(s, o) for s, o in moved})
            for scope, owner in groups:  # sorted: two bulk writers lock in one order
                self._lock_scope(conn, scope, owner)
            conn.execute(memories.delete().where(memories.c.id.in_(ids)))
            conn.execute(memories.insert(), [memory_values(item) for item in chunk])
            for scope, owner in groups:
                count = conn.execute(
                    sa.select(sa.func.count())
                    .select_from(memories)
                    .where(memories.c.scope == scope, memories.c.owner == owner)
                ).scalar_one()
                self._set_count(conn, scope, owner, int(count))

        for chunk in chunks(batch, 1000):
            self._tx(
                functools.partial(put, chunk=chunk), write=True, action="put_memories", races=3
            )
        return len(batch)
