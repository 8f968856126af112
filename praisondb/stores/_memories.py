"""What every store's long-term memories share: orders, paging, eviction, records, and
the in-process table that ``memory://`` keeps them in (JSON files cache theirs in one).

Orders (the MemoriesStore contract): listing is newest first, ``(created_at, id)``
descending; eviction removes the lowest ``(quality, created_at, id)`` first, so two
processes deciding from the same items always pick the same victims.
"""

from __future__ import annotations

import copy
import heapq
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ..codec import from_record, parse_iso, to_record
from ..core import ranking
from ..errors import Conflict, NotFound, ValidationError
from ..model import MemoryItem, Page
from .base import decode_cursor, encode_cursor

SCOPE_SEPARATOR = "\x1f"
"""Joins scope and owner into one name (ids never hold control characters)."""


def scope_name(scope: str, owner: str) -> str:
    return f"{scope}{SCOPE_SEPARATOR}{owner}"


def eviction_key(item: MemoryItem) -> tuple[float, datetime, str]:
    """Smallest is evicted first: lowest quality, then oldest, then smallest id."""
    return (item.quality, item.created_at, item.id)


def listing_key(item: MemoryItem) -> tuple[datetime, str]:
    """Largest is listed first: newest, then largest id."""
    return (item.created_at, item.id)


def same_content(a: MemoryItem, b: MemoryItem) -> bool:
    """Whether a retried add is the memory already stored (its id is taken otherwise)."""
    return (a.text, a.scope, a.owner, a.metadata, a.importance, a.relevance) == (
        b.text,
        b.scope,
        b.owner,
        b.metadata,
        b.importance,
        b.relevance,
    )


def id_taken(item: MemoryItem) -> Conflict:
    return Conflict(
        f"memory id {item.id!r} is taken by a different memory; add without id= for a new one"
    )


class EvictionOrder:
    """One scope's items in eviction order: a heap of :func:`eviction_key` with lazy
    removal (an entry whose item is gone or changed is skipped and dropped), so choosing
    victims costs O(k log n), not a sort of the scope. Not thread-safe (owner's lock)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, datetime, str]] = []

    def push(self, item: MemoryItem) -> None:
        heapq.heappush(self._heap, eviction_key(item))

    def lowest(self, count: int, items: dict[str, MemoryItem]) -> list[MemoryItem]:
        """The ``count`` first victims among ``items`` (the live ones), changing nothing
        they are ordered by."""
        found: list[MemoryItem] = []
        while self._heap and len(found) < count:
            key = heapq.heappop(self._heap)
            item = items.get(key[2])
            if item is not None and eviction_key(item) == key:
                found.append(item)
        for item in found:
            heapq.heappush(self._heap, eviction_key(item))
        if len(self._heap) > 2 * len(items) + 64:  # mostly stale: rebuild
            self._heap = [eviction_key(item) for item in items.values()]
            heapq.heapify(self._heap)
        return found


def victims(
    item: MemoryItem, items: dict[str, MemoryItem], order: EvictionOrder, max_items: int | None
) -> list[MemoryItem]:
    """What adding ``item`` to a scope holding ``items`` evicts to stay at ``max_items``,
    first victim first (``item`` itself among them when it ranks lowest)."""
    extra = len(items) + 1 - max_items if max_items is not None else 0
    if extra <= 0:
        return []
    return heapq.nsmallest(extra, [*order.lowest(extra, items), item], key=eviction_key)


def memory_cursor(item: MemoryItem) -> str:
    return encode_cursor(item.created_at, item.id)


def decode_memory_cursor(cursor: str) -> tuple[datetime, str]:
    created, memory_id = decode_cursor(cursor, 2)
    try:
        return parse_iso(str(created)), str(memory_id)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"invalid cursor {cursor[:40]!r}") from exc


def page_memories(
    newest_first: Sequence[MemoryItem], limit: int | None, cursor: str | None
) -> Page[MemoryItem]:
    """One page of items already in listing order, after ``cursor``."""
    found: Sequence[MemoryItem] = newest_first
    if cursor:
        after = decode_memory_cursor(cursor)
        found = [m for m in newest_first if listing_key(m) < after]
    if limit is None or len(found) <= limit:
        return Page(list(found))
    items = list(found[:limit])
    return Page(items, memory_cursor(items[-1]) if items else None)


def rank_memories(
    newest_first: Sequence[MemoryItem], query: str, limit: int
) -> list[tuple[MemoryItem, float]]:
    """Brute-force BM25 over one scope's items (ties: the newer first)."""
    return ranking.rank(query, ((m, m.text) for m in newest_first), limit)


def best_matches(
    scores: dict[str, float], items: dict[str, MemoryItem], limit: int
) -> list[tuple[MemoryItem, float]]:
    """The ``limit`` best of an index's scores, ties newest first."""
    best = heapq.nlargest(
        limit,
        ((items[key], score) for key, score in scores.items() if key in items),
        key=lambda pair: (pair[1], *listing_key(pair[0])),
    )
    return best


def memory_record(item: MemoryItem) -> dict[str, Any]:
    """The JSON spelling of a stored memory (``score`` belongs to search results only)."""
    record = to_record(item)
    del record["score"]
    return record


def memory_from_record(record: dict[str, Any]) -> MemoryItem:
    """A memory from a record this store wrote itself."""
    return from_record(MemoryItem, record)


class MemoryTable:
    """Memories held in this process: by id, and each (scope, owner)'s ids.

    Not thread-safe on its own: its owner holds a lock around every call."""

    def __init__(self) -> None:
        self.by_id: dict[str, MemoryItem] = {}
        self.indexes: dict[str, ranking.InvertedIndex] = {}
        self.scopes: dict[str, dict[str, MemoryItem]] = {}
        self.orders: dict[str, EvictionOrder] = {}

    def put(self, item: MemoryItem) -> None:
        old = self.by_id.get(item.id)
        if old is not None:
            self.remove(old.id)
        self.by_id[item.id] = item
        name = scope_name(item.scope, item.owner)
        self.indexes.setdefault(name, ranking.InvertedIndex()).add(item.id, item.text)
        self.scopes.setdefault(name, {})[item.id] = item
        self.orders.setdefault(name, EvictionOrder()).push(item)

    def remove(self, memory_id: str) -> MemoryItem | None:
        item = self.by_id.pop(memory_id, None)
        if item is not None:
            name = scope_name(item.scope, item.owner)
            held = self.scopes[name]
            del held[memory_id]
            self.indexes[name].remove(memory_id, item.text)
            if not held:
                del self.indexes[name]
                del self.scopes[name]
                del self.orders[name]
        return item

    def search(
        self, scope: str, owner: str, query: str, limit: int
    ) -> list[tuple[MemoryItem, float]]:
        index = self.indexes.get(scope_name(scope, owner))
        if index is None or limit <= 0:
            return []
        return best_matches(index.search(query), self.by_id, limit)

    def scope_items(self, scope: str, owner: str) -> list[MemoryItem]:
        return list(self.scopes.get(scope_name(scope, owner), {}).values())

    def select(self, scope: str | None, owner: str | None) -> list[MemoryItem]:
        """Items of one scope (or every item for None), newest first."""
        if scope is None or owner is None:
            found = list(self.by_id.values())
            if scope is not None:
                found = [m for m in found if m.scope == scope]
        else:
            found = self.scope_items(scope, owner)
        found.sort(key=listing_key, reverse=True)
        return found

    def plan_add(self, item: MemoryItem, max_items: int | None) -> list[MemoryItem] | None:
        """What adding ``item`` evicts, or None when it is already stored (a retry).
        Raises Conflict when its id holds other content. Changes nothing."""
        existing = self.by_id.get(item.id)
        if existing is not None:
            if same_content(existing, item):
                return None
            raise id_taken(item)
        name = scope_name(item.scope, item.owner)
        held = self.scopes.get(name)
        if held is None:
            return victims(item, {}, EvictionOrder(), max_items)
        return victims(item, held, self.orders[name], max_items)


class TableMemories:
    """The MemoriesStore methods over a :class:`MemoryTable` (mixin: the store provides
    ``_lock`` and ``_memories``). Items are deep-copied in and out."""

    _lock: threading.RLock
    _memories: MemoryTable

    def add_memory(self, item: MemoryItem, *, max_items: int | None = None) -> list[str]:
        with self._lock:
            doomed = self._memories.plan_add(item, max_items)
            if doomed is None:
                return []
            self._memories.put(copy.deepcopy(item))
            for victim in doomed:
                self._memories.remove(victim.id)
            return [victim.id for victim in doomed]

    def get_memory(self, memory_id: str) -> MemoryItem:
        with self._lock:
            item = self._memories.by_id.get(memory_id)
            if item is None:
                raise NotFound(f"memory {memory_id!r} not found")
            return copy.deepcopy(item)

    def list_memories(
        self,
        scope: str | None = None,
        owner: str | None = None,
        *,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[MemoryItem]:
        with self._lock:
            page = page_memories(self._memories.select(scope, owner), limit, cursor)
            return Page(copy.deepcopy(page.items), page.next_cursor)

    def count_memories(self, scope: str | None = None, owner: str | None = None) -> int:
        with self._lock:
            if scope is not None and owner is not None:
                return len(self._memories.scopes.get(scope_name(scope, owner), ()))
            return len(self._memories.select(scope, owner))

    def delete_memory(self, memory_id: str) -> bool:
        with self._lock:
            return self._memories.remove(memory_id) is not None

    def delete_memories(self, scope: str, owner: str) -> int:
        with self._lock:
            doomed = [m.id for m in self._memories.scope_items(scope, owner)]
            for memory_id in doomed:
                self._memories.remove(memory_id)
            return len(doomed)

    def search_memories(
        self, scope: str, owner: str, query: str, *, limit: int
    ) -> list[tuple[MemoryItem, float]]:
        with self._lock:
            found = self._memories.search(scope, owner, query, limit)
            return [(copy.deepcopy(item), rank) for item, rank in found]

    def put_memories(self, items: Sequence[MemoryItem]) -> int:
        with self._lock:
            for item in items:
                self._memories.put(copy.deepcopy(item))
            return len(items)


__all__ = [
    "MemoryTable",
    "TableMemories",
    "decode_memory_cursor",
    "eviction_key",
    "id_taken",
    "listing_key",
    "memory_cursor",
    "memory_from_record",
    "memory_record",
    "page_memories",
    "rank_memories",
    "same_content",
    "scope_name",
    "victims",
]
