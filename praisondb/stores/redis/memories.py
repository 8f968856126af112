"""Long-term memories on Redis: one slot per (scope, owner), an inverted index, Lua.

Keys of one scope (``S`` = ``<byte length>:{scope \\x1f owner}``, one Cluster slot)::

    P m:S:items   hash  id -> the memory (JSON)
    P m:S:q       zset  score quality, member <created µs, 20 digits><id>: eviction order
    P m:S:c       zset  score 0, the same members: listing order (ZREVRANGEBYLEX)
    P m:S:doc     hash  id -> "# length @ created term tf ..." (what to unindex on removal)
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
from collections.abc import Sequence
from functools import partial
from typing import Any, TypeVar

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
from .codec import DELETE_IF_EQUAL, dumps, hash_tag, to_us
from .core import RedisCore

T = TypeVar("T")

# A removal, shared by the scripts: KEYS items q c doc stats; ``prefix`` the term keys'.
# A memory's doc is "# <length> @ <created, 20 digits> <term> <tf> ...": what to unindex.
_REMOVE = """
local function remove(prefix, id)
  local doc = redis.call('HGET', KEYS[4], id)
  if not doc then return 0 end
  local length, member = 0, id
  for term, value in string.gmatch(doc, '(%S+) (%S+)') do
    if term == '#' then length = tonumber(value)
    elseif term == '@' then member = value .. id
    else redis.call('HDEL', prefix .. term, id) end
  end
  redis.call('HINCRBY', KEYS[5], 'total', -length)
  redis.call('HDEL', KEYS[4], id)
  redis.call('HDEL', KEYS[1], id)
  redis.call('ZREM', KEYS[2], member)
  redis.call('ZREM', KEYS[3], member)
  return 1
end
"""

# ARGV: prefix, max, then per memory: id record quality created(20 digits) length n
# (term tf)*n. max: a number (evict down to it afterwards), '' (no limit) or 'put' (import,
# copy: a stored memory of the same id is replaced, nothing is evicted). Returns
# {'dup', stored record} when a memory's id is taken (not for 'put'), else {'ok', evicted...}.
ADD = (
    _REMOVE
    + """
local prefix, max = ARGV[1], ARGV[2]
local i = 3
while i <= #ARGV do
  local id, created, length = ARGV[i], ARGV[i + 3], tonumber(ARGV[i + 4])
  local first = i + 6
  i = first + 2 * tonumber(ARGV[i + 5])
  local existing = redis.call('HGET', KEYS[1], id)
  if existing then
    if max ~= 'put' then return {'dup', existing} end
    remove(prefix, id)
  end
  local member = created .. id
  redis.call('HSET', KEYS[1], id, ARGV[first - 5])
  redis.call('ZADD', KEYS[2], ARGV[first - 4], member)
  redis.call('ZADD', KEYS[3], 0, member)
  local doc = {'# ' .. length, '@ ' .. created}
  for j = first, i - 1, 2 do
    redis.call('HSET', prefix .. ARGV[j], id, ARGV[j + 1] .. ' ' .. length)
    doc[#doc + 1] = ARGV[j] .. ' ' .. ARGV[j + 1]
  end
  redis.call('HSET', KEYS[4], id, table.concat(doc, ' '))
  redis.call('HINCRBY', KEYS[5], 'total', length)
end
local result = {'ok'}
if max ~= '' and max ~= 'put' then
  local extra = redis.call('ZCARD', KEYS[2]) - tonumber(max)
  if extra > 0 then
    for _, member in ipairs(redis.call('ZRANGE', KEYS[2], 0, extra - 1)) do
      local victim = string.sub(member, 21)
      remove(prefix, victim)
      result[#result + 1] = victim
    end
  end
end
return result
"""
)

# ARGV: prefix id -> 1 removed, 0 absent
DELETE = _REMOVE + "\nreturn remove(ARGV[1], ARGV[2])\n"

# ARGV: prefix -> the removed ids
CLEAR = """
local ids = redis.call('HKEYS', KEYS[1])
for _, doc in ipairs(redis.call('HVALS', KEYS[4])) do
  for term, tf in string.gmatch(doc, '(%S+) (%S+)') do
    if term ~= '#' and term ~= '@' then redis.call('DEL', ARGV[1] .. term) end
  end
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
return ids
"""

# ARGV: prefix limit k1 b term* -> {id, score, record}* of the best ``limit``, best first:
# BM25 exactly as praisondb.core.ranking computes it (same operations, same order), over
# the query terms' postings only; ties: the larger id (the newer, for time-ordered ids).
SEARCH = """
local n = redis.call('HLEN', KEYS[1])
if n == 0 then return {} end
local average = tonumber(redis.call('HGET', KEYS[5], 'total') or '0') / n
local k1, b = tonumber(ARGV[3]), tonumber(ARGV[4])
local scores = {}
for i = 5, #ARGV do
  local flat = redis.call('HGETALL', ARGV[1] .. ARGV[i])
  local df = #flat / 2
  if df > 0 then
    local weight = math.log(1.0 + (n - df + 0.5) / (df + 0.5))
    for j = 1, #flat, 2 do
      local tf, length = string.match(flat[j + 1], '(%d+) (%d+)')
      tf, length = tonumber(tf), tonumber(length)
      local norm = 1.0 - b + b * (average > 0 and length / average or 1.0)
      scores[flat[j]] = (scores[flat[j]] or 0.0) + weight * tf * (k1 + 1.0) / (tf + k1 * norm)
    end
  end
end
local ranked = {}
for id, score in pairs(scores) do ranked[#ranked + 1] = {id, score} end
table.sort(ranked, function(x, y)
  if x[2] ~= y[2] then return x[2] > y[2] end
  return x[1] > y[1]
end)
local result = {}
for i = 1, math.min(tonumber(ARGV[2]), #ranked) do
  result[#result + 1] = ranked[i][1]
  result[#result + 1] = string.format('%.17g', ranked[i][2])
  result[#result + 1] = redis.call('HGET', KEYS[1], ranked[i][1])
end
return result
"""

_PAD = 20
_PUT_CHUNK = 500


def _created(item: MemoryItem) -> str:
    """The first part of a memory's zset member: sorts by time as text."""
    return f"{max(to_us(item.created_at), 0):0{_PAD}d}"


def _chunks(values: list[T], size: int = 1000) -> list[list[T]]:
    return [values[start : start + size] for start in range(0, len(values), size)]


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
    _memory_scopes_known: set[str]

    def _register_memory_scripts(self) -> None:
        self._memory_scopes_known = set()
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

    def _unpoint(self, ids: Sequence[str], name: str) -> None:
        """Remove the pointers of ``ids`` that still name scope ``name``."""

        def run() -> None:
            for chunk in _chunks(list(ids)):
                pipe = self._client.pipeline(transaction=False)
                for memory_id in chunk:
                    pointer = self._memory_pointer(memory_id)
                    pipe.execute_command("EVAL", DELETE_IF_EQUAL, 1, pointer, name)
                pipe.execute()

        if ids:
            self._call("unlink memories", run)

    def _point(self, items: Sequence[MemoryItem], name: str) -> None:
        """Pointers and the scope set first: a crash after them only means NotFound."""

        def run() -> None:
            if name not in self._memory_scopes_known:
                self._client.sadd(self._memory_scopes(), name)
                self._memory_scopes_known.add(name)
            for chunk in _chunks(list(items)):
                pipe = self._client.pipeline(transaction=False)
                for item in chunk:
                    pipe.set(self._memory_pointer(item.id), name)
                pipe.execute()

        self._call("point memories", run)

    def _write(self, items: Sequence[MemoryItem], max_items: str) -> list[Any]:
        """Run ADD for ``items`` of one scope (``max_items``: see the script)."""
        name = scope_name(items[0].scope, items[0].owner)
        args: list[Any] = [self._memory_base(name) + "t:", max_items]
        for item in items:
            length, pairs = _terms(item.text)
            args += [
                item.id,
                dumps(memory_record(item)),
                repr(item.quality),
                _created(item),
                str(length),
                str(len(pairs) // 2),
                *pairs,
            ]
        self._point(items, name)
        keys = self._memory_keys(name)
        result: list[Any] = self._call("add memory", lambda: self._memory_add(keys, args))
        return result

    # -- the protocol --------------------------------------------------------------------
    def add_memory(self, item: MemoryItem, *, max_items: int | None = None) -> list[str]:
        name = scope_name(item.scope, item.owner)
        elsewhere = self._owner_of(item.id)
        if elsewhere is not None and elsewhere != name and self._read_items(elsewhere, [item.id]):
            raise id_taken(item)
        result = self._write([item], "" if max_items is None else str(max_items))
        if _text(result[0]) == "dup":
            if same_content(memory_from_record(_loads(result[1])), item):
                return []
            raise id_taken(item)
        evicted = [_text(v) for v in result[1:]]
        self._unpoint([e for e in evicted if e != item.id], name)
        if item.id in evicted:  # the newcomer itself: its pointer was never wanted
            self._unpoint([item.id], name)
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
        args = [self._memory_base(name) + "t:", memory_id]
        keys = self._memory_keys(name)
        removed = self._call("delete memory", lambda: self._memory_delete(keys, args))
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
        args = [self._memory_base(name) + "t:", str(limit), repr(ranking.K1), repr(ranking.B)]
        args += terms
        keys = self._memory_keys(name)
        raw = self._call("search memories", lambda: self._memory_search(keys, args))
        return [
            (memory_from_record(_loads(raw[i + 2])), float(raw[i + 1]))
            for i in range(0, len(raw), 3)
            if raw[i + 2] is not None
        ]

    def put_memories(self, items: Sequence[MemoryItem]) -> int:
        """A few round trips per batch: the pointers read in one pipeline, memories moving
        scope removed from the old one, then per scope one pipeline of pointers and ADD
        scripts of up to :data:`_PUT_CHUNK` memories ('put': replace, never evict)."""
        if not items:
            return 0
        previous = self._owners_of([item.id for item in items])
        by_scope: dict[str, list[MemoryItem]] = {}
        for item in items:
            name = scope_name(item.scope, item.owner)
            old = previous.get(item.id)
            if old is not None and old != name:  # moving scope: leave the old one
                keys, args = self._memory_keys(old), [self._memory_base(old) + "t:", item.id]
                self._call("move memory", partial(self._memory_delete, keys, args))
            by_scope.setdefault(name, []).append(item)
        for group in by_scope.values():
            for chunk in _chunks(group, _PUT_CHUNK):
                self._write(chunk, "put")
        return len(items)

    def _owners_of(self, ids: list[str]) -> dict[str, str]:
        def run() -> dict[str, str]:
            found: dict[str, str] = {}
            for chunk in _chunks(ids):
                pipe = self._client.pipeline(transaction=False)
                for memory_id in chunk:
                    pipe.get(self._memory_pointer(memory_id))
                for memory_id, owner in zip(chunk, pipe.execute(), strict=True):
                    if owner is not None:
                        found[memory_id] = _text(owner)
            return found

        return self._call("find memories", run)


def _loads(body: bytes | str) -> dict[str, Any]:
    value: dict[str, Any] = orjson.loads(body)
    return value


__all__ = ["RedisMemoriesMixin"]
