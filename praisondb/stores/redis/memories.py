"""Long-term memories on Redis: one slot per (scope, owner), an inverted index, Lua.

Keys of one scope (``S`` = ``<byte length>:{scope \\x1f owner}``, one Cluster slot)::

    P m:S:items   hash  id -> the memory (JSON)
    P m:S:q       zset  score quality, member <created µs, 20 digits><id>: eviction order
    P m:S:c       zset  score 0, the same members: listing order (ZREVRANGEBYLEX)
    P m:S:doc     hash  id -> "term tf term tf ..." (what to unindex on removal)
    P m:S:stats   hash  total -> the scope's summed document length (BM25's avgdl)
    P m:S:t:<term>  hash  id -> "tf length": the postings of one term
    P m:id:<id>   string  the scope holding the memory (a pointer, another slot)
    P m:scopes    set   every scope that ever held a memory (export, copy)

Adding a memory is one script on its scope's keys: refuse a taken id, write item,
members, postings and length, then while the scope holds more than ``max_items`` remove
the first members of ``q`` (lowest quality, then oldest, then smallest id: the zset's
own order) with their postings. So concurrent writers from any number of processes end
with exactly the survivors of a serial run. The pointer and the scope set are written
before the script and the pointers of evicted items removed after it (derived data: a
pointer to nothing means "not found").

Search reads only the query terms' postings (one script: the scope's size and total
length, and each term's postings), scores BM25 (:mod:`praisondb.core.ranking`) in
Python and fetches the best ``limit`` items with one HMGET.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any

import orjson

from ...core import ranking
from ...errors import NotFound
from ...model import MemoryItem, Page
from .._memories import (
    decode_memory_cursor,
    id_taken,
    listing_key,
    memory_cursor,
    memory_from_record,
    memory_record,
    page_memories,
    same_content,
    scope_name,
)
from .codec import dumps, hash_tag, to_us
from .core import RedisCore

# A removal, shared by the scripts: KEYS items q c doc stats; ``prefix`` the term keys'.
_REMOVE = """
local function remove(prefix, id, member)
  local doc = redis.call('HGET', KEYS[4], id)
  if doc then
    local length = 0
    for term, tf in string.gmatch(doc, '(%S+) (%S+)') do
      if term == '#' then length = tonumber(tf) else redis.call('HDEL', prefix .. term, id) end
    end
    redis.call('HINCRBY', KEYS[5], 'total', -length)
    redis.call('HDEL', KEYS[4], id)
  end
  redis.call('HDEL', KEYS[1], id)
  redis.call('ZREM', KEYS[2], member)
  redis.call('ZREM', KEYS[3], member)
end
"""

# ARGV: prefix id record quality member max doclen old-member (term tf)* -> {'dup', record}
# or {'ok', evicted ids...}. max '' means no limit; 'put' overwrites (import, copy): the
# stored item (old-member its member) is unindexed first and nothing is evicted.
ADD = (
    _REMOVE
    + """
local prefix, id, max = ARGV[1], ARGV[2], ARGV[6]
local existing = redis.call('HGET', KEYS[1], id)
if existing then
  if max ~= 'put' then return {'dup', existing} end
  remove(prefix, id, ARGV[8])
end
local length = tonumber(ARGV[7])
redis.call('HSET', KEYS[1], id, ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
redis.call('ZADD', KEYS[3], 0, ARGV[5])
local doc = {'# ' .. length}
for i = 9, #ARGV, 2 do
  redis.call('HSET', prefix .. ARGV[i], id, ARGV[i + 1] .. ' ' .. length)
  doc[#doc + 1] = ARGV[i] .. ' ' .. ARGV[i + 1]
end
redis.call('HSET', KEYS[4], id, table.concat(doc, ' '))
redis.call('HINCRBY', KEYS[5], 'total', length)
local result = {'ok'}
if max ~= '' and max ~= 'put' then
  local extra = redis.call('ZCARD', KEYS[2]) - tonumber(max)
  if extra > 0 then
    for _, member in ipairs(redis.call('ZRANGE', KEYS[2], 0, extra - 1)) do
      local victim = string.sub(member, 21)
      remove(prefix, victim, member)
      result[#result + 1] = victim
    end
  end
end
return result
"""
)

# ARGV: prefix id member -> 1 removed, 0 absent
DELETE = (
    _REMOVE
    + """
if redis.call('HEXISTS', KEYS[1], ARGV[2]) == 0 then return 0 end
remove(ARGV[1], ARGV[2], ARGV[3])
return 1
"""
)

# ARGV: prefix -> the removed ids
CLEAR = """
local ids = redis.call('HKEYS', KEYS[1])
for _, doc in ipairs(redis.call('HVALS', KEYS[4])) do
  for term, tf in string.gmatch(doc, '(%S+) (%S+)') do
    if term ~= '#' then redis.call('DEL', ARGV[1] .. term) end
  end
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
return ids
"""

# ARGV: prefix term* -> {documents, total length, {id, "tf length", ...} per term}
SEARCH = """
local result = {redis.call('HLEN', KEYS[1]), redis.call('HGET', KEYS[5], 'total') or '0'}
for i = 2, #ARGV do
  result[#result + 1] = redis.call('HGETALL', ARGV[1] .. ARGV[i])
end
return result
"""

_PAD = 20
_PAGE = 500


def _member(item: MemoryItem) -> str:
    return f"{max(to_us(item.created_at), 0):0{_PAD}d}{item.id}"


def _terms(text: str) -> tuple[int, list[str]]:
    """The document length and ``term tf`` pairs, flattened, of one memory's text."""
    tokens = ranking.tokenize(text)
    pairs: list[str] = []
    for term, tf in Counter(tokens).items():
        pairs += [term, str(tf)]
    return len(tokens), pairs


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisMemoriesMixin(RedisCore):
    """The MemoriesStore half of RedisStore (kept apart to keep modules small)."""

    _memory_add: Any
    _memory_delete: Any
    _memory_clear: Any
    _memory_search: Any

    def _register_memory_scripts(self) -> None:
        self._memory_add = self._client.register_script(ADD)
        self._memory_delete = self._client.register_script(DELETE)
        self._memory_clear = self._client.register_script(CLEAR)
        self._memory_search = self._client.register_script(SEARCH)

    # -- keys ------------------------------------------------------------------------
    def _memory_base(self, name: str) -> str:
        return f"{self.prefix}m:{len(name.encode())}:{hash_tag(name)}:"

    def _memory_keys(self, name: str) -> list[str]:
        base = self._memory_base(name)
        return [base + part for part in ("items", "q", "c", "doc", "stats")]

    def _memory_pointer(self, memory_id: str) -> str:
        return f"{self.prefix}m:id:{memory_id}"

    def _memory_scopes(self) -> str:
        return f"{self.prefix}m:scopes"

    def _owner_of(self, memory_id: str) -> str | None:
        found = self._call("get memory", lambda: self._client.get(self._memory_pointer(memory_id)))
        return None if found is None else _text(found)

    def _read_items(self, name: str, ids: Sequence[str]) -> list[MemoryItem]:
        if not ids:
            return []
        items_key = self._memory_keys(name)[0]
        bodies = self._call("read memories", lambda: self._client.hmget(items_key, list(ids)))
        return [memory_from_record(_loads(b)) for b in bodies if b is not None]

    def _unpoint(self, ids: Iterable[str], name: str) -> None:
        for memory_id in ids:
            if self._owner_of(memory_id) == name:
                pointer = self._memory_pointer(memory_id)
                self._call("unlink memory", partial(self._client.delete, pointer))

    def _write(self, item: MemoryItem, max_items: str) -> list[Any]:
        name = scope_name(item.scope, item.owner)
        length, pairs = _terms(item.text)
        args = [
            self._memory_base(name) + "t:",
            item.id,
            dumps(memory_record(item)),
            repr(item.quality),
            _member(item),
            max_items,
            str(length),
            "",
            *pairs,
        ]
        self._call("point memory", lambda: self._client.set(self._memory_pointer(item.id), name))
        self._call("index memory", lambda: self._client.sadd(self._memory_scopes(), name))
        result: list[Any] = self._call(
            "add memory", lambda: self._memory_add(self._memory_keys(name), args)
        )
        return result

    # -- the protocol --------------------------------------------------------------------
    def add_memory(self, item: MemoryItem, *, max_items: int | None = None) -> list[str]:
        name = scope_name(item.scope, item.owner)
        elsewhere = self._owner_of(item.id)
        if elsewhere is not None and elsewhere != name and self._read_items(elsewhere, [item.id]):
            raise id_taken(item)
        result = self._write(item, "" if max_items is None else str(max_items))
        if _text(result[0]) == "dup":
            if same_content(memory_from_record(_loads(result[1])), item):
                return []
            raise id_taken(item)
        evicted = [_text(v) for v in result[1:]]
        self._unpoint(evicted, name)
        return evicted

    def get_memory(self, memory_id: str) -> MemoryItem:
        name = self._owner_of(memory_id)
        found = self._read_items(name, [memory_id]) if name is not None else []
        if not found:
            raise NotFound(f"memory {memory_id!r} not found")
        return found[0]

    def _scope_page(self, name: str, limit: int | None, cursor: str | None) -> Page[MemoryItem]:
        listing = self._memory_keys(name)[2]
        high = "+"
        if cursor:
            created, memory_id = decode_memory_cursor(cursor)
            high = f"({max(to_us(created), 0):0{_PAD}d}{memory_id}"
        count = -1 if limit is None else limit + 1
        members = self._call(
            "list memories",
            lambda: self._client.zrevrangebylex(listing, high, "-", start=0, num=count),
        )
        ids = [_text(m)[_PAD:] for m in members]
        items = self._read_items(name, ids[:limit] if limit is not None else ids)
        more = limit is not None and len(ids) > limit
        return Page(items, memory_cursor(items[-1]) if more and items else None)

    def _scope_names(self) -> list[str]:
        names = self._call("list scopes", lambda: self._client.smembers(self._memory_scopes()))
        return sorted(_text(n) for n in names)

    def list_memories(
        self,
        scope: str | None = None,
        owner: str | None = None,
        *,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[MemoryItem]:
        if scope is not None and owner is not None:
            return self._scope_page(scope_name(scope, owner), limit, cursor)
        found: list[MemoryItem] = []
        for name in self._scope_names():
            items_key = self._memory_keys(name)[0]
            bodies = self._call("list memories", partial(self._client.hvals, items_key))
            found += [memory_from_record(_loads(b)) for b in bodies]
        if scope is not None:
            found = [m for m in found if m.scope == scope]
        found.sort(key=listing_key, reverse=True)
        return page_memories(found, limit, cursor)

    def count_memories(self, scope: str | None = None, owner: str | None = None) -> int:
        if scope is not None and owner is not None:
            listing = self._memory_keys(scope_name(scope, owner))[2]
            return int(self._call("count memories", partial(self._client.zcard, listing)))
        if scope is not None:
            return len(self.list_memories(scope).items)
        total = 0
        for name in self._scope_names():
            listing = self._memory_keys(name)[2]
            total += int(self._call("count memories", partial(self._client.zcard, listing)))
        return total

    def delete_memory(self, memory_id: str) -> bool:
        name = self._owner_of(memory_id)
        if name is None:
            return False
        found = self._read_items(name, [memory_id])
        if not found:
            return False
        args = [self._memory_base(name) + "t:", memory_id, _member(found[0])]
        removed = self._call(
            "delete memory", lambda: self._memory_delete(self._memory_keys(name), args)
        )
        self._unpoint([memory_id], name)
        return bool(int(removed))

    def delete_memories(self, scope: str, owner: str) -> int:
        name = scope_name(scope, owner)
        args = [self._memory_base(name) + "t:"]
        ids = self._call(
            "delete memories", lambda: self._memory_clear(self._memory_keys(name), args)
        )
        self._unpoint([_text(i) for i in ids], name)
        return len(ids)

    def search_memories(
        self, scope: str, owner: str, query: str, *, limit: int
    ) -> list[tuple[MemoryItem, float]]:
        terms = ranking.query_terms(query)
        if not terms or limit <= 0:
            return []
        name = scope_name(scope, owner)
        args = [self._memory_base(name) + "t:", *terms]
        raw = self._call(
            "search memories", lambda: self._memory_search(self._memory_keys(name), args)
        )
        documents, total = int(raw[0]), int(raw[1])
        if documents == 0:
            return []
        postings: list[dict[str, tuple[int, int]]] = []
        for flat in raw[2:]:
            posting: dict[str, tuple[int, int]] = {}
            for i in range(0, len(flat), 2):
                frequency, size = _text(flat[i + 1]).split()
                posting[_text(flat[i])] = (int(frequency), int(size))
            postings.append(posting)
        average = total / documents
        weights = [ranking.idf(documents, len(p)) for p in postings]
        scores: dict[str, float] = {}
        for posting, weight in zip(postings, weights, strict=True):
            for memory_id, (tf, length) in posting.items():
                gained = ranking.term_score(tf, length, average, weight)
                scores[memory_id] = scores.get(memory_id, 0.0) + gained
        best = sorted(scores.items(), key=lambda pair: (-pair[1], _reverse(pair[0])))[:limit]
        items = {m.id: m for m in self._read_items(name, [memory_id for memory_id, _ in best])}
        return [(items[memory_id], rank) for memory_id, rank in best if memory_id in items]

    def put_memories(self, items: Sequence[MemoryItem]) -> int:
        for item in items:
            name = scope_name(item.scope, item.owner)
            previous = self._owner_of(item.id)
            if previous is not None and previous != name:
                moved = self._read_items(previous, [item.id])
                if moved:
                    args = [self._memory_base(previous) + "t:", item.id, _member(moved[0])]
                    keys = self._memory_keys(previous)
                    self._call("move memory", partial(self._memory_delete, keys, args))
            old = self._read_items(name, [item.id])
            self._write_put(item, _member(old[0]) if old else _member(item))
        return len(items)

    def _write_put(self, item: MemoryItem, old_member: str) -> None:
        name = scope_name(item.scope, item.owner)
        length, pairs = _terms(item.text)
        args = [
            self._memory_base(name) + "t:",
            item.id,
            dumps(memory_record(item)),
            repr(item.quality),
            _member(item),
            "put",
            str(length),
            old_member,
            *pairs,
        ]
        self._call("point memory", lambda: self._client.set(self._memory_pointer(item.id), name))
        self._call("index memory", lambda: self._client.sadd(self._memory_scopes(), name))
        self._call("put memory", lambda: self._memory_add(self._memory_keys(name), args))


def _reverse(text: str) -> tuple[int, ...]:
    """A sort key that orders strings descending (ties: the newer id first)."""
    return tuple(-ord(c) for c in text)


def _loads(body: bytes | str) -> dict[str, Any]:
    value: dict[str, Any] = orjson.loads(body)
    return value


__all__ = ["RedisMemoriesMixin"]
