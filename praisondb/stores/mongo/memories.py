"""Long-term memories on MongoDB: one document per memory, a text index, eviction in a
transaction.

``memories`` documents: ``{_id, scope, owner, text, importance, relevance, quality,
metadata (keys escaped), embedding, created_at (µs)}``. Indexes (migration 2): a compound
text index ``(scope, owner, text)`` with ``default_language: "none"`` (no stemming, no
stopwords: the same words every backend matches; the query side drops the shared
stopwords), so a search reads only its own scope's postings; ``(scope, owner,
created_at desc, _id desc)`` for listing and ``(scope, owner, quality, created_at, _id)``
for eviction.

A scope's writers take turns on its ``memory_scopes`` document (``{_id: {s, o}, n}``,
``n`` the exact count): every add bumps it first inside the transaction, so two adds to
one scope meet a write conflict and one is re-run after the other commits (``_atomic``);
the survivors are a serial run's. A re-run add finds its id and returns [] (retry-safe).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument

from ...core.ranking import query_terms
from ...errors import Conflict, NotFound
from ...model import MemoryItem, Page
from .._kit import chunks
from ..base import decode_session_cursor, encode_cursor
from .codec import escape, from_us, to_us, unescape
from .core import EVICTION_ORDER, MongoCore

_COMPARED = ("scope", "owner", "text", "importance", "relevance", "quality", "metadata")


def memory_doc(item: MemoryItem) -> dict[str, Any]:
    return {
        "_id": item.id,
        "scope": item.scope,
        "owner": item.owner,
        "text": item.text,
        "importance": float(item.importance),
        "relevance": float(item.relevance),
        "quality": float(item.quality),
        "metadata": escape(item.metadata),
        "embedding": item.embedding,
        "created_at": to_us(item.created_at),
    }


def parse_memory(doc: dict[str, Any]) -> MemoryItem:
    return MemoryItem(
        text=doc["text"],
        scope=doc["scope"],
        owner=doc["owner"],
        importance=doc["importance"],
        relevance=doc["relevance"],
        quality=doc["quality"],
        metadata=unescape(doc["metadata"]),
        embedding=doc.get("embedding"),
        id=doc["_id"],
        created_at=from_us(doc["created_at"]),
    )


def _same(stored: MemoryItem, item: MemoryItem) -> bool:
    return all(getattr(stored, f) == getattr(item, f) for f in _COMPARED) and (
        stored.embedding == item.embedding
    )


def _scope_id(scope: str, owner: str) -> dict[str, str]:
    return {"s": scope, "o": owner}


class MongoMemoriesMixin(MongoCore):
    """The MemoriesStore part of MongoStore."""

    def _lock_scope(self, session: Any, scope: str, owner: str) -> int:
        doc = self._db.memory_scopes.find_one_and_update(
            {"_id": _scope_id(scope, owner)},
            {"$inc": {"v": 1}},  # a real write: a no-op update would lock nothing
            upsert=True,
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        return int(doc.get("n", 0))  # absent on a fresh scope

    def _set_count(self, session: Any, scope: str, owner: str, count: int) -> None:
        self._db.memory_scopes.update_one(
            {"_id": _scope_id(scope, owner)}, {"$set": {"n": count}}, session=session
        )

    def add_memory(self, item: MemoryItem, *, max_items: int | None = None) -> list[str]:
        doc = memory_doc(item)

        def body(session: Any) -> list[str]:
            count = self._lock_scope(session, item.scope, item.owner)
            stored = self._db.memories.find_one({"_id": item.id}, session=session)
            if stored is not None:
                if _same(parse_memory(stored), item):
                    return []
                raise Conflict(
                    f"memory {item.id!r} already exists with other content; add it under a new id"
                )
            self._db.memories.insert_one(doc, session=session)
            count += 1
            evicted: list[str] = []
            if max_items is not None and count > max_items:
                lowest = self._db.memories.find(
                    {"scope": item.scope, "owner": item.owner},
                    {"_id": 1},
                    sort=EVICTION_ORDER,
                    limit=count - max_items,
                    session=session,
                )
                evicted = [d["_id"] for d in lowest]
                self._db.memories.delete_many({"_id": {"$in": evicted}}, session=session)
                count -= len(evicted)
            self._set_count(session, item.scope, item.owner, count)
            return evicted

        result: list[str] = self._atomic("add memory", body)
        return result

    def get_memory(self, memory_id: str) -> MemoryItem:
        doc = self._call("get memory", lambda: self._db.memories.find_one({"_id": memory_id}))
        if doc is None:
            raise NotFound(f"memory {memory_id!r} not found")
        return parse_memory(doc)

    @staticmethod
    def _memory_filter(scope: str | None, owner: str | None) -> dict[str, Any]:
        found: dict[str, Any] = {}
        if scope is not None:
            found["scope"] = scope
        if owner is not None:
            found["owner"] = owner
        return found

    def list_memories(
        self,
        scope: str | None = None,
        owner: str | None = None,
        *,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[MemoryItem]:
        where = self._memory_filter(scope, owner)
        if cursor:
            created, last_id = decode_session_cursor(cursor)
            at = to_us(created)
            where["$or"] = [
                {"created_at": {"$lt": at}},
                {"created_at": at, "_id": {"$lt": last_id}},
            ]
        order = [("created_at", DESCENDING), ("_id", DESCENDING)]

        def run() -> list[dict[str, Any]]:
            found = self._db.memories.find(
                where, sort=order, limit=0 if limit is None else limit + 1
            )
            return list(found)

        docs = self._call("list memories", run)
        items = [parse_memory(d) for d in docs[:limit]]
        more = limit is not None and len(docs) > limit and bool(items)
        return Page(items, encode_cursor(items[-1].created_at, items[-1].id) if more else None)

    def count_memories(self, scope: str | None = None, owner: str | None = None) -> int:
        where = self._memory_filter(scope, owner)
        return int(self._call("count memories", lambda: self._db.memories.count_documents(where)))

    def delete_memory(self, memory_id: str) -> bool:
        def body(session: Any) -> bool:
            doc = self._db.memories.find_one(
                {"_id": memory_id}, {"scope": 1, "owner": 1}, session=session
            )
            if doc is None:
                return False
            count = self._lock_scope(session, doc["scope"], doc["owner"])
            if not self._db.memories.delete_one({"_id": memory_id}, session=session).deleted_count:
                return False
            self._set_count(session, doc["scope"], doc["owner"], max(count - 1, 0))
            return True

        return bool(self._atomic("delete memory", body))

    def delete_memories(self, scope: str, owner: str) -> int:
        def body(session: Any) -> int:
            self._lock_scope(session, scope, owner)
            removed = self._db.memories.delete_many(
                {"scope": scope, "owner": owner}, session=session
            ).deleted_count
            self._db.memory_scopes.delete_one({"_id": _scope_id(scope, owner)}, session=session)
            return int(removed)

        return int(self._atomic("delete memories", body))

    def search_memories(
        self, scope: str, owner: str, query: str, *, limit: int
    ) -> list[tuple[MemoryItem, float]]:
        terms = query_terms(query)
        if not terms or limit <= 0:
            return []
        # Letters and digits only, space-separated: $search sees no phrase ("...") and
        # no negation (-word), so any term matches (OR), as in BM25.
        where = {"scope": scope, "owner": owner, "$text": {"$search": " ".join(terms)}}
        score = {"$meta": "textScore"}

        def run() -> list[dict[str, Any]]:
            found = self._db.memories.find(
                where,
                {"rank": score},
                sort=[("rank", score), ("created_at", DESCENDING), ("_id", ASCENDING)],
                limit=limit,
            )
            return list(found)

        docs = self._call("search memories", run)
        return [(parse_memory(d), float(d["rank"])) for d in docs]

    def put_memories(self, items: Sequence[MemoryItem]) -> int:
        batch = list({item.id: item for item in items}.values())  # the last of an id wins

        def body(session: Any, *, chunk: Sequence[MemoryItem]) -> None:
            ids = [item.id for item in chunk]
            moved = self._db.memories.find(
                {"_id": {"$in": ids}}, {"scope": 1, "owner": 1}, session=session
            )
            groups = sorted(
                {(i.scope, i.owner) for i in chunk} | {(d["scope"], d["owner"]) for d in moved}
            )
            for scope, owner in groups:
                self._lock_scope(session, scope, owner)
            self._db.memories.delete_many({"_id": {"$in": ids}}, session=session)
            self._db.memories.insert_many([memory_doc(i) for i in chunk], session=session)
            for scope, owner in groups:
                count = self._db.memories.count_documents(
                    {"scope": scope, "owner": owner}, session=session
                )
                self._set_count(session, scope, owner, count)

        for chunk in chunks(batch, 500):
            self._atomic("put memories", functools.partial(body, chunk=chunk))
        return len(batch)
