"""Redis store (``redis://``, ``rediss://``, ``unix://``): conversations and state.

Add ``?cluster=true`` to a ``redis://``/``rediss://`` URL to talk to a Redis Cluster
(``redis.cluster.RedisCluster``); the key layout is the same either way.

Key layout (``P`` is the ``prefix`` option, default ``praisondb:``)::

    P s:{<session id>}:info   hash   info (JSON), created_at, updated_at (µs), message_count, last_seq
    P s:{<session id>}:msgs   zset   score seq, member = JSON [id, role, content, metadata, run_id, created µs]
    P s:{<session id>}:ids    zset   score seq, member = message id (duplicate check, range deletes)
    P s:{<session id>}:runs | :cps | :spans   hashes  item id -> JSON (see redis_items)
    P t:{<trace id>}:spans    hash   spans without a session
    P run:<id> | cp:<id> | span:<id>   pointers to an item's home hash
    P idx:created | idx:user:<u> | idx:agent:<a> | idx:parent:<p>   zsets of session ids
    P spans:all | spans:trace:<t> | spans:user:<u>   zsets of span ids
    P st:<byte length of scope>:{<scope>}:<key>   hash  v (JSON), ver, upd, exp (µs); PEXPIREAT

Everything a session owns carries its ``{session id}`` hash tag, so it lives in one
Cluster slot, and every atomic step (a Lua script or a MULTI) touches one slot only. An
append is one EVALSHA on that session's keys (HMGET counters, ZADD NX ids, ZADD msgs,
HSET counters), so concurrent writers in any number of processes get gap-free seqs, and
deleting a session is one MULTI in its slot.

The global zsets and pointers live in other slots, so they are written in separate
steps and treated as derived data: a session's index entries are written before the
session itself and once more after it, and a listing verifies every entry against the
session (exists, belongs to that index, same created_at score). An entry that fails is
dropped and the session's real entries written again, so crashes between steps and
expired sessions (``session_ttl``) heal when a listing meets them.
Nothing reads an ``updated_at`` index (listing filters on the info hash), so none is kept
(older versions kept ``P idx:updated``; delete_session still removes its entries).
Timestamps are integer microseconds (exact).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode

import orjson
import redis
import redis.backoff
import redis.exceptions
import redis.retry

from ...errors import ConfigError, Conflict, NotFound
from ...model import Message, Page, SessionInfo, Span, utcnow
from ...options import as_bool
from ...retry import Retry
from ...urls import StoreURL, redact_text
from .._kit import session_matches
from ..base import (
    UNSET,
    Capability,
    SessionQuery,
    decode_session_cursor,
    merge_metadata,
    session_cursor,
)
from .codec import (
    APPEND,
    DELETE_IF_EQUAL,
    DELETE_MESSAGES,
    PUT_MESSAGES,
    STATE_DELETE,
    STATE_INCR,
    STATE_SET,
    dumps,
    from_us,
    hash_tag,
    now_us,
    parse_message,
    parse_span,
    query_fields,
    to_us,
)
from .items import RedisItemsMixin
from .state import RedisStateMixin

T = TypeVar("T")
OPTIONS = {
    "auto_migrate",
    "prefix",
    "session_ttl",
    "timeout",
    "connect_timeout",
    "retry_attempts",
    "cluster",
}
_BATCH = 200


class RedisStore(RedisItemsMixin, RedisStateMixin):
    """Conversations and state on one Redis server or a Redis Cluster.

    Options (keyword or URL query): ``prefix`` namespaces several apps on one server;
    ``session_ttl`` (seconds) expires a session after that long without writes;
    ``timeout``/``connect_timeout`` (seconds, default 5) bound each network call;
    ``retry_attempts`` (default 3) is how often a connection error is tried;
    ``cluster`` (default false) uses the Redis Cluster client.
    """

    capabilities: frozenset[Capability] = frozenset(
        {Capability.PERSISTENT, Capability.MULTI_PROCESS}
    )

    def __init__(self, url: StoreURL, **options: Any) -> None:
        self.url = url
        merged: dict[str, Any] = {k: v for k, v in url.options.items() if k in OPTIONS}
        merged.update(options)
        unknown = sorted(set(options) - OPTIONS)
        if unknown:
            raise ConfigError(f"unknown option(s) for {url.redacted}: {', '.join(unknown)}")
        self.prefix = str(merged.get("prefix", "praisondb:"))
        if "{" in self.prefix or "}" in self.prefix:
            raise ConfigError("the redis key prefix must not contain '{' or '}' (hash tags)")
        try:
            self.session_ttl = int(merged.get("session_ttl") or 0)
            timeout = float(merged.get("timeout", 5))
            connect_timeout = float(merged.get("connect_timeout", timeout))
            attempts = int(merged.get("retry_attempts", 3))
        except ValueError as exc:
            raise ConfigError(f"bad option value for {url.redacted}: {exc}") from None
        if self.session_ttl < 0 or attempts < 1 or timeout <= 0:
            raise ConfigError("session_ttl must be >= 0, retry_attempts >= 1, timeout > 0")
        self.cluster = as_bool("cluster", merged.get("cluster") or False)
        self._retry = Retry(attempts=attempts)
        self._shown = url.redacted  # computed once: _call runs on every operation
        base, _, query = url.secret.partition("?")
        rest = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k not in OPTIONS]
        driver_url = base + ("?" + urlencode(rest) if rest else "")
        settings: dict[str, Any] = {
            "socket_timeout": timeout,
            "socket_connect_timeout": connect_timeout,
            "retry": redis.retry.Retry(redis.backoff.NoBackoff(), 0),  # ours retries
            "health_check_interval": 0,
        }
        if self.cluster:
            self._client: Any = self._call(
                "connect", functools.partial(self._cluster_client, driver_url, settings)
            )
        else:
            try:
                self._client = redis.Redis.from_url(driver_url, **settings)
            except (TypeError, ValueError) as exc:
                raise ConfigError(
                    f"bad redis URL {url.redacted}: {redact_text(str(exc), url.secret)}"
                ) from None
        self._append = self._client.register_script(APPEND)
        self._put_messages_script = self._client.register_script(PUT_MESSAGES)
        self._delete_messages_script = self._client.register_script(DELETE_MESSAGES)
        self._state_set = self._client.register_script(STATE_SET)
        self._state_delete = self._client.register_script(STATE_DELETE)
        self._state_incr = self._client.register_script(STATE_INCR)

    # -- sessions -------------------------------------------------------------
    def _session_mapping(self, info: SessionInfo) -> dict[str, bytes | str]:
        blob = [info.user_id, info.agent, info.title, info.metadata, info.parent_id]
        return {
            "info": dumps([*blob, info.forked_at_seq]),
            "created_at": str(to_us(info.created_at)),
            "updated_at": str(to_us(info.updated_at)),
            "message_count": str(info.message_count),
            "last_seq": str(info.last_seq),
        }

    def _parse_session(self, session_id: str, raw: dict[bytes, bytes]) -> SessionInfo:
        user_id, agent, title, metadata, parent_id, forked = orjson.loads(raw[b"info"])
        return SessionInfo(
            id=session_id,
            user_id=user_id,
            agent=agent,
            title=title,
            metadata=metadata,
            parent_id=parent_id,
            forked_at_seq=forked,
            created_at=from_us(raw[b"created_at"]),
            updated_at=from_us(raw[b"updated_at"]),
            message_count=int(raw[b"message_count"]),
            last_seq=int(raw[b"last_seq"]),
        )

    def _index_entries(self, info: SessionInfo) -> dict[str, int]:
        """The created-ordered indexes a session belongs to, with its score."""
        created = to_us(info.created_at)
        entries = {self._idx("created"): created}
        if info.user_id is not None:
            entries[self._idx("user", info.user_id)] = created
        if info.agent is not None:
            entries[self._idx("agent", info.agent)] = created
        if info.parent_id is not None:
            entries[self._idx("parent", info.parent_id)] = created
        return entries

    def _add_entries(
        self, session_id: str, entries: dict[str, int], stale: Sequence[str] = ()
    ) -> None:
        """One pipeline (one step per key, on a cluster split by node): ZREM ``stale``, ZADD."""
        pipe = self._client.pipeline(transaction=False)
        for key in stale:
            pipe.zrem(key, session_id)
        for key, score in entries.items():
            pipe.zadd(key, {session_id: score})
        pipe.execute()

    def _reindex_sessions(self, session_ids: Sequence[str]) -> None:
        """Write the real index entries of these sessions again (after entries were dropped)."""
        raws = self._hgetall_many(session_ids)
        pipe = self._client.pipeline(transaction=False)
        for session_id, raw in zip(session_ids, raws, strict=True):
            if raw:
                entries = self._index_entries(self._parse_session(session_id, raw))
                for key, score in entries.items():
                    pipe.zadd(key, {session_id: score})
        pipe.execute()

    def _write_session(self, info: SessionInfo, *, create: bool) -> SessionInfo:
        info_key, msgs_key, ids_key = self._session_keys(info.id)[:3]
        entries = self._index_entries(info)

        def transaction(pipe: Any) -> tuple[SessionInfo, SessionInfo | None]:
            raw = pipe.hgetall(info_key)
            stored = dataclasses.replace(info)
            old = self._parse_session(info.id, raw) if raw else None
            if create:
                if old is not None:
                    raise Conflict(f"session {info.id!r} already exists")
                stored.message_count = stored.last_seq = 0
            else:
                top = pipe.zrevrange(ids_key, 0, 0, withscores=True)
                stored.message_count = int(pipe.zcard(msgs_key))
                stored.last_seq = max(
                    stored.last_seq,
                    old.last_seq if old else 0,
                    int(top[0][1]) if top else 0,
                )
            pipe.multi()
            pipe.delete(info_key)
            pipe.hset(info_key, mapping=self._session_mapping(stored))
            self._expire(pipe, info.id)
            return stored, old

        # 1. index entries first: a crash after them leaves entries listings drop;
        # 2. the session, in one slot;  3. the entries again (a listing may have dropped
        # them meanwhile) and old ones that no longer apply removed.
        self._call("index session", functools.partial(self._add_entries, info.id, entries))
        try:
            stored, old = self._transaction("write session", transaction, info_key)
        except Conflict:  # step 1 may have moved the existing session's index scores
            self._call("index session", functools.partial(self._reindex_sessions, [info.id]))
            raise
        stale = [k for k in self._index_entries(old) if k not in entries] if old else []
        self._call("index session", functools.partial(self._add_entries, info.id, entries, stale))
        if stale:  # a concurrent put may have made those entries right again
            self._call("index session", functools.partial(self._reindex_sessions, [info.id]))
        return stored

    def _expire(self, pipe: Any, session_id: str) -> None:
        if self.session_ttl:
            for key in self._session_keys(session_id):
                pipe.expire(key, self.session_ttl)

    def create_session(self, info: SessionInfo) -> SessionInfo:
        return self._write_session(info, create=True)

    def put_session(self, info: SessionInfo) -> None:
        self._write_session(info, create=False)

    def get_session(self, session_id: str) -> SessionInfo:
        raw = self._call("get session", lambda: self._client.hgetall(self._key(session_id, "info")))
        if not raw:
            raise NotFound(f"session {session_id!r} not found")
        return self._parse_session(session_id, raw)

    def _index_for(self, query: SessionQuery) -> str:
        """The most selective index for a query."""
        if query.parent_id is not None:
            return self._idx("parent", query.parent_id)
        if query.user_id is not None:
            return self._idx("user", query.user_id)
        if query.agent is not None:
            return self._idx("agent", query.agent)
        return self._idx("created")

    def _candidates(self, query: SessionQuery, dangling: list[str]) -> Iterator[SessionInfo]:
        """Sessions newest-created first from the most selective index, filters applied.

        Pages by (score, id) rather than by offset, so entries dropped or added by other
        clients meanwhile never make it skip or repeat one. Entries that do not match
        their session (gone, moved, different created_at) go to ``dangling``.
        """
        index = self._index_for(query)
        top: str = "+inf"
        after: tuple[int, str] | None = None
        if query.cursor:
            created, last_id = decode_session_cursor(query.cursor)
            after = (to_us(created), last_id)
            top = str(after[0])
        num = _BATCH
        while True:
            batch = self._call(
                "list sessions",
                functools.partial(
                    self._client.zrevrangebyscore,
                    index,
                    top,
                    "-inf",
                    start=0,
                    num=num,
                    withscores=True,
                ),
            )
            fresh = [
                entry
                for entry in ((int(score), member.decode()) for member, score in batch)
                if after is None or entry < after
            ]
            if not fresh:
                if len(batch) < num:
                    return
                num *= 2  # more sessions share one created_at than a batch holds
                continue
            num = _BATCH
            ids = [session_id for _, session_id in fresh]
            raws = self._call("list sessions", functools.partial(self._hgetall_many, ids))
            for (score, session_id), raw in zip(fresh, raws, strict=True):
                info = self._parse_session(session_id, raw) if raw else None
                if info is None or self._index_entries(info).get(index) != score:
                    dangling.append(session_id)
                elif session_matches(info, query):
                    yield info
            after = fresh[-1]
            top = str(after[0])
            if len(batch) < num:
                return

    def _reap(self, query: SessionQuery, dangling: list[str]) -> None:
        """Drop index entries a listing found wrong, then re-add the sessions' real ones."""
        if not dangling:
            return
        index = self._index_for(query)

        def run() -> None:
            pipe = self._client.pipeline(transaction=False)
            for session_id in dangling:
                pipe.zrem(index, session_id)
            pipe.execute()
            self._reindex_sessions(dangling)

        self._call("repair session index", run)

    def _hgetall_many(self, ids: Sequence[str]) -> list[dict[bytes, bytes]]:
        pipe = self._client.pipeline(transaction=False)
        for session_id in ids:
            pipe.hgetall(self._key(session_id, "info"))
        result: list[dict[bytes, bytes]] = pipe.execute()
        return result

    def list_sessions(self, query: SessionQuery) -> Page[SessionInfo]:
        items: list[SessionInfo] = []
        more = False
        dangling: list[str] = []
        for info in self._candidates(query, dangling):
            if len(items) == query.limit:
                more = True
                break
            items.append(info)
        self._reap(query, dangling)
        return Page(items, session_cursor(items[-1]) if more and items else None)

    def count_sessions(self, query: SessionQuery) -> int:
        """Counts verified entries (an index may hold entries a crash or a TTL left)."""
        every = SessionQuery(**{**query_fields(query), "cursor": None})
        dangling: list[str] = []
        count = sum(1 for _ in self._candidates(every, dangling))
        self._reap(every, dangling)
        return count

    def update_session(
        self,
        session_id: str,
        *,
        title: str | None = UNSET,
        metadata: dict[str, Any] | None = None,
        replace_metadata: bool = False,
    ) -> SessionInfo:
        info_key = self._key(session_id, "info")

        def transaction(pipe: Any) -> SessionInfo:
            raw = pipe.hgetall(info_key)
            if not raw:
                raise NotFound(f"session {session_id!r} not found")
            info = self._parse_session(session_id, raw)
            if title is not UNSET:
                info.title = title
            info.metadata = merge_metadata(info.metadata, metadata, replace_metadata)
            info.updated_at = max(utcnow(), info.updated_at)
            pipe.multi()
            mapping = self._session_mapping(info)
            pipe.hset(info_key, mapping={k: mapping[k] for k in ("info", "updated_at")})
            self._expire(pipe, session_id)
            return info

        return self._transaction("update session", transaction, info_key)

    def delete_session(self, session_id: str) -> bool:
        """One MULTI deletes everything the session owns; pointers and index entries in
        other slots are removed after it (and re-added if the session was re-created)."""
        keys = self._session_keys(session_id)

        def transaction(pipe: Any) -> tuple[dict[bytes, bytes], list[str], list[str], list[Span]]:
            raw = pipe.hgetall(keys[0])
            run_ids = [k.decode() for k in pipe.hkeys(keys[3])]
            cp_ids = [k.decode() for k in pipe.hkeys(keys[4])]
            spans = [parse_span(body) for body in pipe.hvals(keys[5])]
            pipe.multi()
            pipe.delete(*keys)
            return raw, run_ids, cp_ids, spans

        raw, run_ids, cp_ids, spans = self._transaction("delete session", transaction, *keys)

        def cleanup() -> None:
            pipe = self._client.pipeline(transaction=False)
            if raw:
                for key in self._index_entries(self._parse_session(session_id, raw)):
                    pipe.zrem(key, session_id)
            pipe.zrem(self._idx("updated"), session_id)
            for kind, item_ids in (("run", run_ids), ("cp", cp_ids)):
                for item_id in item_ids:
                    pipe.execute_command(
                        "EVAL", DELETE_IF_EQUAL, 1, self._pointer(kind, item_id), session_id
                    )
            self._unlink_spans(pipe, session_id, spans)
            pipe.execute()
            if raw:  # re-created meanwhile? then its entries are back
                self._reindex_sessions([session_id])
            if spans:
                self._reindex_spans(span.id for span in spans)

        self._call("delete session", cleanup)
        return bool(raw)

    # -- messages -------------------------------------------------------------
    def append_messages(self, session_id: str, messages: Sequence[Message]) -> list[Message]:
        """One EVALSHA; the keys and arguments are built once, outside the retry loop."""
        if not messages:
            if not self._call("append", lambda: self._client.exists(self._key(session_id, "info"))):
                raise NotFound(f"session {session_id!r} not found")
            return list(messages)
        tag = f"{self.prefix}s:{hash_tag(session_id)}:"
        keys = [tag + "info", tag + "msgs", tag + "ids"]
        if self.session_ttl:
            keys += [tag + "runs", tag + "cps", tag + "spans"]
        args: list[Any] = [b"", self.session_ttl, b"0"]
        for m in messages:
            args.append(m.id)
            args.append(dumps([m.id, m.role, m.content, m.metadata, m.run_id, to_us(m.created_at)]))
        attempts = 0

        def run() -> int:
            nonlocal attempts
            attempts += 1
            args[0] = str(now_us())
            if attempts > 1:  # a retry after a lost reply: the ids already there mean success
                args[2] = b"1"
            return int(self._append(keys, args))

        first = self._call("append messages", run)
        if first == -1:
            raise NotFound(f"session {session_id!r} not found")
        if first == -2:
            raise Conflict(f"a message id of this batch already exists in session {session_id!r}")
        for offset, message in enumerate(messages):
            message.seq = first + offset
            message.session_id = session_id
        return list(messages)

    def put_messages(self, session_id: str, messages: Sequence[Message]) -> int:
        keys = self._session_keys(session_id)[:3]
        args: list[Any] = []
        for m in messages:
            member = dumps([m.id, m.role, m.content, m.metadata, m.run_id, to_us(m.created_at)])
            args += [m.id, m.seq, member]
        result = self._call("put messages", lambda: self._put_messages_script(keys, args))
        if isinstance(result, list):
            seq, holder = result
            raise Conflict(
                f"seq {int(seq)} of session {session_id!r} is held by {holder.decode()!r}"
            )
        if int(result) == -1:
            raise NotFound(f"session {session_id!r} not found")
        return int(result)

    def list_messages(
        self,
        session_id: str,
        *,
        after_seq: int | None = None,
        before_seq: int | None = None,
        last: int | None = None,
        limit: int | None = None,
    ) -> list[Message]:
        key = self._key(session_id, "msgs")
        low = "-inf" if after_seq is None else f"({after_seq}"
        high = "+inf" if before_seq is None else f"({before_seq}"
        if last is not None:
            if last <= 0:
                return []
            rows = self._call(
                "list messages",
                lambda: self._client.zrevrangebyscore(
                    key, high, low, start=0, num=last, withscores=True
                ),
            )
            rows.reverse()
            if limit is not None:
                rows = rows[:limit]
        elif limit is not None:
            if limit <= 0:
                return []
            rows = self._call(
                "list messages",
                lambda: self._client.zrangebyscore(
                    key, low, high, start=0, num=limit, withscores=True
                ),
            )
        else:
            rows = self._call(
                "list messages",
                lambda: self._client.zrangebyscore(key, low, high, withscores=True),
            )
        return [parse_message(session_id, member, seq) for member, seq in rows]

    def get_messages(self, session_id: str, ids: Sequence[str]) -> list[Message]:
        if not ids:
            return []
        key = self._key(session_id, "msgs")
        seqs = self._call(
            "get messages", lambda: self._client.zmscore(self._key(session_id, "ids"), list(ids))
        )
        found = sorted({int(seq) for seq in seqs if seq is not None})

        def load() -> list[Any]:
            pipe = self._client.pipeline(transaction=False)
            for seq in found:
                pipe.zrangebyscore(key, seq, seq, withscores=True)
            return list(pipe.execute())

        rows = self._call("get messages", load) if found else []
        return [parse_message(session_id, member, seq) for row in rows for member, seq in row]

    def count_messages(self, session_id: str) -> int:
        return int(
            self._call("count messages", lambda: self._client.zcard(self._key(session_id, "msgs")))
        )

    def delete_messages(
        self, session_id: str, *, from_seq: int | None = None, to_seq: int | None = None
    ) -> int:
        keys = self._session_keys(session_id)[:3]
        lo = "-inf" if from_seq is None else str(from_seq)
        hi = "+inf" if to_seq is None else str(to_seq)
        return int(
            self._call(
                "delete messages",
                lambda: self._delete_messages_script(keys, [lo, hi, str(to_us(utcnow()))]),
            )
        )
