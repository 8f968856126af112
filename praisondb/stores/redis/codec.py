"""Encoding and Lua scripts of the Redis backend (no driver import here: plain data).

Values are orjson; timestamps are integer microseconds since the epoch, so they
round-trip exactly (a float score or a BSON date would not).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import orjson

from ... import clock
from ...model import Checkpoint, Message, Run, Span, StateEntry
from ..base import SessionQuery

T = TypeVar("T")
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

# KEYS: info msgs ids [runs cps: only with a TTL]; ARGV: now_us, ttl, replay, (id, member)*
# -> first seq, -1 (no session) or -2 (an id is taken). One HMGET reads every counter (and
# proves the session exists); ZADD NX claims the ids and detects duplicates in the same
# call (our seqs are all above last_seq, so a clash is undone by score range); one HSET
# writes the counters back; a single message skips the chunked batch path. Seqs and
# counts are small integers, so passing them as Lua numbers is exact; updated_at (~1.7e15)
# is only compared as a number (exact below 2^53) and written back as the given string.
APPEND = """
local info, msgs, ids = KEYS[1], KEYS[2], KEYS[3]
local head = redis.call('HMGET', info, 'last_seq', 'message_count', 'updated_at')
if not head[1] then return -1 end
local n = (#ARGV - 3) / 2
local first = tonumber(head[1]) + 1
local last = first + n - 1
if n == 1 then
  if redis.call('ZADD', ids, 'NX', first, ARGV[4]) == 0 then
    if ARGV[3] == '1' then return tonumber(redis.call('ZSCORE', ids, ARGV[4])) end
    return -2
  end
  redis.call('ZADD', msgs, first, ARGV[5])
else
  local added = 0
  local chunk = {}
  for i = 1, n do
    chunk[#chunk + 1] = first + i - 1
    chunk[#chunk + 1] = ARGV[2 + 2 * i]
    if #chunk == 1000 or i == n then
      added = added + redis.call('ZADD', ids, 'NX', unpack(chunk))
      chunk = {}
    end
  end
  if added < n then
    if added > 0 then redis.call('ZREMRANGEBYSCORE', ids, first, last) end
    if ARGV[3] == '1' and added == 0 then return tonumber(redis.call('ZSCORE', ids, ARGV[4])) end
    return -2
  end
  for i = 1, n do
    chunk[#chunk + 1] = first + i - 1
    chunk[#chunk + 1] = ARGV[3 + 2 * i]
    if #chunk == 1000 or i == n then
      redis.call('ZADD', msgs, unpack(chunk))
      chunk = {}
    end
  end
end
local count = tonumber(head[2]) + n
if tonumber(ARGV[1]) > tonumber(head[3]) then
  redis.call('HSET', info, 'last_seq', last, 'message_count', count, 'updated_at', ARGV[1])
else
  redis.call('HSET', info, 'last_seq', last, 'message_count', count)
end
if #KEYS > 3 then
  for i = 1, #KEYS do redis.call('EXPIRE', KEYS[i], ARGV[2]) end
end
return first
"""

# KEYS: info msgs ids; ARGV: (id, seq, member)*  -> inserted count, or {seq, holder} on a clash
PUT_MESSAGES = """
local info, msgs, ids = KEYS[1], KEYS[2], KEYS[3]
if redis.call('EXISTS', info) == 0 then return -1 end
local fresh = {}
for i = 1, #ARGV, 3 do
  if not redis.call('ZSCORE', ids, ARGV[i]) then
    local holder = redis.call('ZRANGEBYSCORE', ids, ARGV[i + 1], ARGV[i + 1])
    if holder[1] and holder[1] ~= ARGV[i] then return {ARGV[i + 1], holder[1]} end
    fresh[#fresh + 1] = i
  end
end
local top = tonumber(redis.call('HGET', info, 'last_seq'))
for _, i in ipairs(fresh) do
  redis.call('ZADD', msgs, ARGV[i + 1], ARGV[i + 2])
  redis.call('ZADD', ids, ARGV[i + 1], ARGV[i])
  if tonumber(ARGV[i + 1]) > top then top = tonumber(ARGV[i + 1]) end
end
redis.call('HSET', info, 'last_seq', string.format('%d', top), 'message_count', redis.call('ZCARD', msgs))
return #fresh
"""

# KEYS: info msgs ids; ARGV: lo, hi, now_us
DELETE_MESSAGES = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local removed = redis.call('ZREMRANGEBYSCORE', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[3], ARGV[1], ARGV[2])
if removed > 0 then
  redis.call('HSET', KEYS[1], 'message_count', redis.call('ZCARD', KEYS[2]))
  if tonumber(ARGV[3]) > tonumber(redis.call('HGET', KEYS[1], 'updated_at')) then
    redis.call('HSET', KEYS[1], 'updated_at', ARGV[3])
  end
end
return removed
"""

# KEYS: pointer; ARGV: the value it must still hold -> 1 if deleted. Cleanup after a
# session delete must not drop a pointer a concurrent save has just moved elsewhere.
DELETE_IF_EQUAL = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# Every state script keeps the scope's key index (KEYS[2], a zset of key names, score 0,
# read in key order with ZRANGEBYLEX) in step with the entry: ZADD when it writes, ZREM
# when it deletes. An entry that expires leaves its name behind; a listing that meets
# the name of a missing entry drops it (PRUNE_INDEX).
# KEYS: entry, index; ARGV: value, version, updated_us, exp_us (''), exp_ms (''), name.
# One entry of put_entries, atomic on its own (a batch spans many scopes, so many slots).
PUT_ENTRY = """
redis.call('ZADD', KEYS[2], 0, ARGV[6])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'ver', ARGV[2], 'upd', ARGV[3])
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[1], 'exp', ARGV[4])
  redis.call('PEXPIREAT', KEYS[1], ARGV[5])
end
return 1
"""

LIVE_VERSION = """
local function live_version(key, now)
  local cur = redis.call('HMGET', key, 'ver', 'exp', 'tok')
  if not cur[1] then return 0, false end
  if cur[2] and tonumber(cur[2]) <= tonumber(now) then return 0, false end
  return tonumber(cur[1]), cur[3]
end
"""

# The 'tok' field holds the write token of the entry's last set or incr: a re-sent
# write that finds its own token landed already (see StateStore.set_entry).
# KEYS: entry, index; ARGV: value, expected ('' = any), now_us, exp_us (''), exp_ms (''),
# token, name -> {version, 0} written; {-1, live version} Conflict; {version, 1, v, ver, upd, exp}
# when it landed already (the entry as stored)
STATE_SET = (
    LIVE_VERSION
    + """
local ver, tok = live_version(KEYS[1], ARGV[3])
if ver > 0 and tok == ARGV[6] then
  return {ver, 1, unpack(redis.call('HMGET', KEYS[1], 'v', 'ver', 'upd', 'exp'))}
end
if ARGV[2] ~= '' and tonumber(ARGV[2]) ~= ver then return {-1, ver} end
redis.call('ZADD', KEYS[2], 0, ARGV[7])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'ver', ver + 1, 'upd', ARGV[3], 'tok', ARGV[6])
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[1], 'exp', ARGV[4])
  redis.call('PEXPIREAT', KEYS[1], ARGV[5])
end
return {ver + 1, 0}
"""
)

# KEYS: entry, index; ARGV: expected ('' = any), now_us, retry ('1': a re-send, so an
# absent entry with expected > 0 counts as deleted; see StateStore.delete_entry), name
STATE_DELETE = (
    LIVE_VERSION
    + """
local ver = live_version(KEYS[1], ARGV[2])
if ver == 0 and ARGV[3] == '1' and ARGV[1] ~= '' and tonumber(ARGV[1]) > 0 then
  return {1, 0}
end
if ARGV[1] ~= '' and tonumber(ARGV[1]) ~= ver then return {-1, ver} end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[4])
if ver > 0 then return {1, 0} end
return {0, 0}
"""
)

# KEYS: entry, index; ARGV: amount, now_us, exp_us (''), exp_ms (''), token, name
# -> {1, new value}
# ({1, value as stored} if this incr landed already), {-1, value} when it is not an
# integer, or {-2, value} when the sum leaves signed 64 bits (unchanged)
STATE_INCR = (
    LIVE_VERSION
    + """
local ver, tok = live_version(KEYS[1], ARGV[2])
if ver > 0 and tok == ARGV[5] then return {1, redis.call('HGET', KEYS[1], 'v')} end
if ver == 0 then
  redis.call('ZADD', KEYS[2], 0, ARGV[6])
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'v', ARGV[1], 'ver', 1, 'upd', ARGV[2], 'tok', ARGV[5])
  if ARGV[3] ~= '' then
    redis.call('HSET', KEYS[1], 'exp', ARGV[3])
    redis.call('PEXPIREAT', KEYS[1], ARGV[4])
  end
  return {1, ARGV[1]}
end
local v = redis.call('HGET', KEYS[1], 'v')
if not string.match(v, '^%-?%d+$') then return {-1, v} end
local sum = redis.pcall('HINCRBY', KEYS[1], 'v', ARGV[1])
if type(sum) == 'table' and sum.err then return {-2, v} end
redis.call('HINCRBY', KEYS[1], 'ver', 1)
redis.call('HSET', KEYS[1], 'upd', ARGV[2], 'tok', ARGV[5])
return {1, redis.call('HGET', KEYS[1], 'v')}
"""
)


# KEYS: index, entry*; ARGV: the entries' names -> how many names were dropped. Drops the
# name of each entry that no longer exists (expired), checked inside the script so a
# writer re-creating the entry meanwhile keeps its name.
PRUNE_INDEX = """
local dropped = 0
for i = 1, #ARGV do
  if redis.call('EXISTS', KEYS[i + 1]) == 0 then
    dropped = dropped + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return dropped
"""


def hash_tag(text: str) -> str:
    """``{text}``: the Redis Cluster hash tag that puts every key built on it in one slot.

    Redis hashes what lies between the first ``{`` and the next ``}``; text that starts
    with ``}`` would make that empty (and the whole key hashed), so it gets the tag
    ``{\x01}`` instead, followed by the text: still one slot, and no clash with other
    text, which never holds control characters.
    """
    return "{\x01}" + text if text.startswith("}") else "{" + text + "}"


def to_us(moment: datetime) -> int:
    """Integer microseconds since the epoch: exact, unlike a float or a BSON date."""
    delta = moment - EPOCH  # field arithmetic: ~2x faster than ``// timedelta(1 µs)``
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def now_us() -> int:
    """The current time as :func:`to_us` would give it for ``utcnow()``, without a datetime."""
    return clock.time_ns() // 1_000


def from_us(us: int | bytes | str) -> datetime:
    return EPOCH + timedelta(microseconds=int(us))


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "\\*?[]^-" else c for c in text)


def query_fields(query: SessionQuery) -> dict[str, Any]:
    return {f: getattr(query, f) for f in query.__dataclass_fields__}


def parse_message(session_id: str, member: bytes, seq: float) -> Message:
    message_id, role, content, metadata, run_id, created = orjson.loads(member)
    return Message(
        session_id=session_id,
        role=role,
        content=content,
        metadata=metadata,
        run_id=run_id,
        id=message_id,
        seq=int(seq),
        created_at=from_us(created),
    )


def parse_run(body: bytes) -> Run:
    rid, sid, model, status, tin, tout, started, ended, error, metadata = orjson.loads(body)
    return Run(
        session_id=sid,
        id=rid,
        model=model,
        status=status,
        input_tokens=tin,
        output_tokens=tout,
        started_at=from_us(started),
        ended_at=None if ended is None else from_us(ended),
        error=error,
        metadata=metadata,
    )


def parse_checkpoint(body: bytes) -> Checkpoint:
    cid, sid, seq, state, label, created = orjson.loads(body)
    return Checkpoint(sid, seq, state, label, id=cid, created_at=from_us(created))


def parse_span(body: bytes) -> Span:
    trace, name, sid_, parent, session, user, status, attrs, started, ended = orjson.loads(body)
    return Span(
        trace_id=trace,
        name=name,
        id=sid_,
        parent_id=parent,
        session_id=session,
        user_id=user,
        status=status,
        attributes=attrs,
        started_at=from_us(started),
        ended_at=None if ended is None else from_us(ended),
    )


def parse_entry(scope: str, key: str, row: list[bytes | None], now_us: int) -> StateEntry | None:
    value, version, updated, expires = row
    if value is None or version is None or updated is None:
        return None
    if expires is not None and int(expires) <= now_us:
        return None
    return StateEntry(
        scope,
        key,
        orjson.loads(value),
        int(version),
        None if expires is None else from_us(expires),
        from_us(updated),
    )


def expiry_args(expires_at: datetime | None) -> tuple[str, str]:
    """(µs for the exact round trip, ms for PEXPIREAT, rounded up so Redis never expires early)."""
    if expires_at is None:
        return "", ""
    us = to_us(expires_at)
    return str(us), str(max(1, math.ceil(us / 1000)))
