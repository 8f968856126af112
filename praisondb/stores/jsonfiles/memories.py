"""Long-term memories for the JSON-files store (the MemoriesStore half).

Layout: ``memories/<name>/items.jsonl`` per (scope, owner), ``<name>`` the
:func:`safe_name` of both. Each line is one whole change: ``{"put": [records], "del":
[ids]}``; adding a memory and evicting what it pushes out is one line, appended with one
``write`` under the scope's cross-process lock, so a crash leaves the change whole or
absent (a torn last line is ignored, and cut before the next append). Deciding the
victims and appending happen under that lock, so concurrent writers from any process
evict exactly what a serial run would.

``index/memories/<name>.json`` maps a memory id to its scope, for ``get``/``delete`` by
id; it is written before the line that adds the memory and removed after the one that
deletes it, so it may point at nothing for a moment (a lookup then finds nothing) but
never misses a stored memory.

Reading a scope replays its file once per process and then only the bytes appended
since (a cache keyed by the file's inode); when deletions make the file more than twice
as long as what it holds (and over 256 lines), it is rewritten compactly under the lock
(a new inode, so other processes replay it whole). Search ranks the scope's items with
the shared BM25 (:mod:`praisondb.core.ranking`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from ...core.ranking import InvertedIndex
from ...errors import NotFound
from ...model import MemoryItem, Page
from .._memories import (
    EvictionOrder,
    best_matches,
    id_taken,
    listing_key,
    memory_from_record,
    memory_record,
    page_memories,
    same_content,
    scope_name,
    victims,
)
from .files import (
    LockTable,
    PathLock,
    Root,
    append_bytes,
    atomic_write,
    complete_lines,
    dumps,
    guarded,
    loads_line,
    read_json,
    read_range,
    repair_tail,
    safe_name,
    unlink_quietly,
)

if TYPE_CHECKING:
    from ...urls import StoreURL

ITEMS = "items.jsonl"
_COMPACT_MIN_LINES = 256


@dataclass
class _Scope:
    """One scope's items as replayed from its file up to ``offset`` (of inode ``inode``)."""

    inode: int = -1
    offset: int = 0
    lines: int = 0
    items: dict[str, MemoryItem] = field(default_factory=dict)
    index: InvertedIndex = field(default_factory=InvertedIndex)
    order: EvictionOrder = field(default_factory=EvictionOrder)


def _apply(state: _Scope, data: bytes) -> None:
    for line in complete_lines(data):
        change = loads_line(line)
        state.lines += 1
        if change is None:
            continue
        for memory_id in change.get("del") or ():
            gone = state.items.pop(memory_id, None)
            if gone is not None:
                state.index.remove(memory_id, gone.text)
        for record in change.get("put") or ():
            item = memory_from_record(record)
            old = state.items.get(item.id)
            if old is not None:
                state.index.remove(item.id, old.text)
            state.items[item.id] = item
            state.index.add(item.id, item.text)
            state.order.push(item)


class MemoryFiles:
    """Mixin: the store class provides the attributes declared here."""

    url: StoreURL
    _fs: Root
    _locks: LockTable
    _fsync: bool
    _memory_scopes: dict[str, _Scope]
    _memory_guard: threading.Lock

    def _init_memories(self) -> None:
        self._memory_scopes = {}
        self._memory_guard = threading.Lock()
        os.makedirs(self._fs.dir("memories"), exist_ok=True)
        os.makedirs(self._fs.dir("index", "memories"), exist_ok=True)

    # -- files -------------------------------------------------------------------------
    def _items_path(self, name: str) -> str:
        return self._fs.file("memories", name, ITEMS)

    def _memory_lock(self, name: str) -> PathLock:
        return self._locks("m-" + name)

    def _pointer_path(self, memory_id: str) -> str:
        return self._fs.file("index", "memories", f"{safe_name(memory_id)}.json")

    def _pointer(self, memory_id: str) -> str | None:
        """The scope file name ``memory_id`` was last added to, or None."""
        try:
            data = read_json(self._pointer_path(memory_id))
        except (FileNotFoundError, NotADirectoryError):
            return None
        if data is None or data.get("id") != memory_id or not isinstance(data.get("name"), str):
            return None
        return str(data["name"])

    def _point(self, item: MemoryItem, name: str, *, fsync: bool = True) -> None:
        pointer = orjson.dumps({"id": item.id, "name": name})
        atomic_write(self._pointer_path(item.id), pointer, fsync=fsync and self._fsync)

    def _synced(self, name: str) -> _Scope:
        """The scope's cached state, brought up to the file (only new bytes are read).
        Call with ``_memory_guard`` held."""
        path = self._items_path(name)
        try:
            info = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            self._memory_scopes.pop(name, None)
            return _Scope()
        state = self._memory_scopes.get(name)
        if state is None or state.inode != info.st_ino or state.offset > info.st_size:
            state = _Scope(inode=info.st_ino)
            self._memory_scopes[name] = state
        if info.st_size > state.offset:
            data = read_range(path, state.offset, info.st_size)
            complete = data.rfind(b"\n") + 1
            _apply(state, data[:complete])
            state.offset += complete
        return state

    def _load_scope(self, name: str) -> dict[str, MemoryItem]:
        """The scope's items now: a copy of the mapping, the items themselves shared (do
        not mutate them)."""
        with self._memory_guard:
            return dict(self._synced(name).items)

    def _append_change(
        self,
        name: str,
        put: Sequence[MemoryItem] = (),
        deleted: Iterable[str] = (),
        *,
        fsync: bool = True,
    ) -> None:
        """Append one change line (call under the scope's lock)."""
        change: dict[str, Any] = {}
        if put:
            change["put"] = [memory_record(item) for item in put]
        gone = list(deleted)
        if gone:
            change["del"] = gone
        line = dumps(change, "memory") + b"\n"
        path = self._items_path(name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        repair_tail(path, fsync=self._fsync)
        append_bytes(path, line, fsync=fsync and self._fsync)

    def _maybe_compact(self, name: str) -> None:
        """Rewrite the scope's file when mostly dead lines (call under its lock)."""
        with self._memory_guard:
            state = self._synced(name)
            if state.lines < _COMPACT_MIN_LINES or state.lines <= 2 * max(len(state.items), 1):
                return
            items = dict(state.items)
        ordered = sorted(items.values(), key=listing_key)
        body = b"".join(dumps({"put": [memory_record(m)]}, "memory") + b"\n" for m in ordered)
        atomic_write(self._items_path(name), body, fsync=self._fsync)

    def _forget_pointers(self, name: str, ids: Iterable[str]) -> None:
        for memory_id in ids:
            if self._pointer(memory_id) == name:
                unlink_quietly(self._pointer_path(memory_id))

    def _scope_names(self) -> list[str]:
        try:
            return sorted(os.listdir(self._fs.dir("memories")))
        except FileNotFoundError:
            return []

    def _select(self, scope: str | None, owner: str | None) -> list[MemoryItem]:
        if scope is not None and owner is not None:
            found = list(self._load_scope(safe_name(scope_name(scope, owner))).values())
        else:
            found = [
                item
                for name in self._scope_names()
                for item in self._load_scope(name).values()
                if scope is None or item.scope == scope
            ]
        found.sort(key=listing_key, reverse=True)
        return found

    # -- the protocol ------------------------------------------------------------------
    @guarded
    def add_memory(self, item: MemoryItem, *, max_items: int | None = None) -> list[str]:
        name = safe_name(scope_name(item.scope, item.owner))
        elsewhere = self._pointer(item.id)
        if elsewhere is not None and elsewhere != name and item.id in self._load_scope(elsewhere):
            raise id_taken(item)
        with self._memory_lock(name):
            with self._memory_guard:
                state = self._synced(name)
                existing = state.items.get(item.id)
                if existing is None:
                    doomed = [m.id for m in victims(item, state.items, state.order, max_items)]
            if existing is not None:
                if same_content(existing, item):
                    return []
                raise id_taken(item)
            self._point(item, name)
            kept = [] if item.id in doomed else [item]
            self._append_change(name, kept, [d for d in doomed if d != item.id])
            self._forget_pointers(name, doomed)
            if doomed:
                self._maybe_compact(name)
        return doomed

    @guarded
    def get_memory(self, memory_id: str) -> MemoryItem:
        name = self._pointer(memory_id)
        item = self._load_scope(name).get(memory_id) if name is not None else None
        if item is None:
            raise NotFound(f"memory {memory_id!r} not found")
        return memory_from_record(memory_record(item))

    @guarded
    def list_memories(
        self,
        scope: str | None = None,
        owner: str | None = None,
        *,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[MemoryItem]:
        page = page_memories(self._select(scope, owner), limit, cursor)
        return Page([memory_from_record(memory_record(m)) for m in page.items], page.next_cursor)

    @guarded
    def count_memories(self, scope: str | None = None, owner: str | None = None) -> int:
        return len(self._select(scope, owner))

    @guarded
    def delete_memory(self, memory_id: str) -> bool:
        name = self._pointer(memory_id)
        if name is None:
            return False
        with self._memory_lock(name):
            if memory_id not in self._load_scope(name):
                return False
            self._append_change(name, deleted=[memory_id])
            unlink_quietly(self._pointer_path(memory_id))
            self._maybe_compact(name)
        return True

    @guarded
    def delete_memories(self, scope: str, owner: str) -> int:
        name = safe_name(scope_name(scope, owner))
        with self._memory_lock(name):
            ids = list(self._load_scope(name))
            if ids:
                atomic_write(self._items_path(name), b"", fsync=self._fsync)
                self._forget_pointers(name, ids)
        return len(ids)

    @guarded
    def search_memories(
        self, scope: str, owner: str, query: str, *, limit: int
    ) -> list[tuple[MemoryItem, float]]:
        name = safe_name(scope_name(scope, owner))
        with self._memory_guard:
            state = self._synced(name)
            found = best_matches(state.index.search(query), state.items, limit)
        return [(memory_from_record(memory_record(m)), rank) for m, rank in found]

    @guarded
    def put_memories(self, items: Sequence[MemoryItem]) -> int:
        """Import and copy: every file of the batch is written without its own flush, then
        one ``os.sync`` makes the whole batch durable (a bulk load of 100,000 memories
        would otherwise flush 200,000 times)."""
        by_scope: dict[str, list[MemoryItem]] = {}
        for item in items:
            by_scope.setdefault(safe_name(scope_name(item.scope, item.owner)), []).append(item)
        for name, group in by_scope.items():
            for item in group:  # a memory moving scope leaves its old one
                previous = self._pointer(item.id)
                if previous is not None and previous != name:
                    with self._memory_lock(previous):
                        if item.id in self._load_scope(previous):
                            self._append_change(previous, deleted=[item.id], fsync=False)
                self._point(item, name, fsync=False)
            with self._memory_lock(name):
                self._append_change(name, group, fsync=False)
        if self._fsync and items:
            os.sync()
        return len(items)


__all__ = ["MemoryFiles"]
