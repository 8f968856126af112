"""Redis store (``redis://``, ``rediss://``, ``unix://``): conversations and state.

Key layout (``P`` is the ``prefix`` option, default ``praisondb:``)::

    P s:{<session id>}:info   hash   info (JSON), created_at, updated_at (µs), message_count, last_seq
    P s:{<session id>}:msgs   zset   score seq, member = JSON [id, role, content, metadata, run_id, created µs]
    P s:{<session id>}:ids    zset   score seq, member = message id (duplicate check, range deletes)
    P s:{<session id>}:runs   hash   run id -> JSON;  P run:<id> -> session id
    P s:{<session id>}:cps    hash   checkpoint id -> JSON;  P cp:<id> -> session id
    P idx:created | idx:user:<u> | idx:agent:<a> | idx:parent:<p>   zsets of session ids
    P span:<id> (JSON) and P spans:all | spans:trace:<t> | spans:session:<s> | spans:user:<u>
    P st:<byte length of scope>:<scope>:<key>   hash  v (JSON), ver, upd, exp (µs); native PEXPIREAT

Every key of one session carries the ``{session id}`` hash tag, so a session lives in
one Redis Cluster slot and its Lua scripts stay single-slot. An append is one EVALSHA
touching only that session's keys (HMGET counters, ZADD NX ids, ZADD msgs, HSET
counters), so concurrent writers in any number of processes get gap-free seq values.
Nothing reads an ``updated_at`` index (listing filters on the info hash), so none is kept
(older versions kept ``P idx:updated``; delete_session still removes its entries).
Timestamps are integer microseconds (exact).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode

import orjson
import redis
import redis.backoff
import redis.exceptions
import redis.retry

from ..errors import BackendUnavailable, ConfigError, Conflict, NotFound
from ..model import Checkpoint, Message, Page, Run, SessionInfo, Span, utcnow
from ..retry import Retry
from ..urls import StoreURL, redact_text
from .base import (
    UNSET,
    Capability,
    SessionQuery,
    decode_session_cursor,
    merge_metadata,
    session_cursor,
)
from .redis_codec import (
    APPEND,
    DELETE_MESSAGES,
    PUT_MESSAGES,
    STATE_DELETE,
    STATE_INCR,
    STATE_SET,
    dumps,
    first_line,
    from_us,
    matches,
    newest,
    now_us,
    parse_checkpoint,
    parse_message,
    parse_run,
    parse_span,
    query_fields,
    to_us,
)
from .redis_state import RedisStateMixin

T = TypeVar("T")
OPTIONS = {"auto_migrate", "prefix", "session_ttl", "timeout", "connect_timeout", "retry_attempts"}
_BATCH = 200


class RedisStore(RedisStateMixin):
    """Conversations and state on one Redis server (or a Cluster, thanks to hash tags).

    Options (keyword or URL query): ``prefix`` namespaces several apps on one server;
    ``session_ttl`` (seconds) expires a session after that long without writes;
    ``timeout``/``connect_timeout`` (seconds, default 5) bound each network call;
    ``retry_attempts`` (default 3) is how often a connection error is tried.
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
        self._retry = Retry(attempts=attempts)
        self._shown = url.redacted  # computed once: _call runs on every operation
        base, _, query = url.secret.partition("?")
        rest = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k not in OPTIONS]
        driver_url = base + ("?" + urlencode(rest) if rest else "")
        try:
            self._client: Any = redis.Redis.from_url(
                driver_url,
                socket_timeout=timeout,
                socket_connect_timeout=connect_timeout,
                retry=redis.retry.Retry(redis.backoff.NoBackoff(), 0),
                health_check_interval=0,
            )
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

    # -- plumbing -----------------------------------------------------------------
    def _call(self, action: str, fn: Callable[[], T]) -> T:
        try:
            return self._retry.call(fn, transient=_transient, url=self._shown, action=action)
        except redis.exceptions.AuthenticationError as exc:
            raise ConfigError(
                f"redis refused the credentials of {self.url.redacted}: "
                f"{redact_text(first_line(exc), self.url.secret)}"
            ) from None
        except BackendUnavailable as exc:
            text = str(exc)
            if redact_text(text, self.url.secret) != text:  # a driver message quoted a secret
                raise BackendUnavailable(
                    redact_text(text, self.url.secret), attempts=exc.attempts
                ) from None
            raise
        except redis.exceptions.RedisError as exc:
            raise BackendUnavailable(
                f"{action} failed: {redact_text(first_line(exc), self.url.secret)}",
                url=self.url.redacted,
            ) from None

    def _transaction(self, action: str, body: Callable[[Any], T], *watch: str) -> T:
        """WATCH ``watch``, run ``body`` (reads, then ``pipe.multi()`` and writes), EXEC;
        redis-py re-runs it when a watched key changed underneath."""

        def run() -> T:
            result: T = self._client.transaction(body, *watch, value_from_callable=True)
            return result

        return self._call(action, run)

    def _key(self, session_id: str, part: str) -> str:
        return f"{self.prefix}s:{{{session_id}}}:{part}"

    def _session_keys(self, session_id: str) -> list[str]:
        return [self._key(session_id, p) for p in ("info", "msgs", "ids", "runs", "cps")]

    def _idx(self, kind: str, value: str | None = None) -> str:
        return f"{self.prefix}idx:{kind}" + ("" if value is None else f":{value}")

    def ping(self) -> None:
        self._call("ping", self._client.ping)

    def schema_version(self) -> str | None:
        return None

    def close(self) -> None:
        self._client.close()
        self._client.connection_pool.disconnect()

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

    def _index_keys(self, info: SessionInfo) -> list[tuple[str, int]]:
        """The created-ordered indexes a session belongs to, with its score."""
        created = to_us(info.created_at)
        keys = [(self._idx("created"), created)]
        if info.user_id is not None:
            keys.append((self._idx("user", info.user_id), created))
        if info.agent is not None:
            keys.append((self._idx("agent", info.agent), created))
        if info.parent_id is not None:
            keys.append((self._idx("parent", info.parent_id), created))
        return keys

    def _write_session(self, info: SessionInfo, *, create: bool) -> SessionInfo:
        info_key, msgs_key, ids_key = self._session_keys(info.id)[:3]

        def transaction(pipe: Any) -> SessionInfo:
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
            if old is not None:
                for key, _ in self._index_keys(old):
                    pipe.zrem(key, info.id)
                pipe.delete(info_key)
            pipe.hset(info_key, mapping=self._session_mapping(stored))
            for key, score in self._index_keys(stored):
                pipe.zadd(key, {info.id: score})
            self._expire(pipe, info.id)
            return stored

        return self._transaction("write session", transaction, info_key)

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

    def _candidates(self, query: SessionQuery) -> Iterator[SessionInfo]:
        """Sessions newest-created first from the most selective index, filters applied."""
        if query.parent_id is not None:
            index = self._idx("parent", query.parent_id)
        elif query.user_id is not None:
            index = self._idx("user", query.user_id)
        elif query.agent is not None:
            index = self._idx("agent", query.agent)
        else:
            index = self._idx("created")
        top: str = "+inf"
        after: tuple[int, str] | None = None
        if query.cursor:
            created, last_id = decode_session_cursor(query.cursor)
            after = (to_us(created), last_id)
            top = str(after[0])
        offset = 0
        while True:
            batch = self._call(
                "list sessions",
                functools.partial(
                    self._client.zrevrangebyscore,
                    index,
                    top,
                    "-inf",
                    start=offset,
                    num=_BATCH,
                    withscores=True,
                ),
            )
            offset += len(batch)
            ids = [
                (member.decode(), int(score))
                for member, score in batch
                if after is None or (int(score), member.decode()) < after
            ]
            if ids:
                raws = self._call("list sessions", functools.partial(self._hgetall_many, ids))
                for (session_id, _), raw in zip(ids, raws, strict=True):
                    if raw and matches(info := self._parse_session(session_id, raw), query):
                        yield info
            if len(batch) < _BATCH:
                return

    def _hgetall_many(self, ids: list[tuple[str, int]]) -> list[dict[bytes, bytes]]:
        pipe = self._client.pipeline(transaction=False)
        for session_id, _ in ids:
            pipe.hgetall(self._key(session_id, "info"))
        result: list[dict[bytes, bytes]] = pipe.execute()
        return result

    def list_sessions(self, query: SessionQuery) -> Page[SessionInfo]:
        items: list[SessionInfo] = []
        more = False
        for info in self._candidates(query):
            if len(items) == query.limit:
                more = True
                break
            items.append(info)
        return Page(items, session_cursor(items[-1]) if more and items else None)

    def count_sessions(self, query: SessionQuery) -> int:
        plain = query.updated_after is None and query.updated_before is None
        chosen = [query.parent_id, query.user_id, query.agent]
        if plain and not self.session_ttl and sum(v is not None for v in chosen) <= 1:
            key = (
                self._idx("parent", query.parent_id)
                if query.parent_id is not None
                else self._idx("user", query.user_id)
                if query.user_id is not None
                else self._idx("agent", query.agent)
                if query.agent is not None
                else self._idx("created")
            )
            return int(self._call("count sessions", lambda: self._client.zcard(key)))
        return sum(
            1 for _ in self._candidates(SessionQuery(**{**query_fields(query), "cursor": None}))
        )

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
        keys = self._session_keys(session_id)

        def transaction(pipe: Any) -> bool:
            raw = pipe.hgetall(keys[0])
            run_ids = [k.decode() for k in pipe.hkeys(keys[3])]
            cp_ids = [k.decode() for k in pipe.hkeys(keys[4])]
            span_ids = [
                m.decode() for m in pipe.zrange(self._spans_index("session", session_id), 0, -1)
            ]
            spans = self._load_spans(span_ids, pipe)
            pipe.multi()
            pipe.delete(*keys)
            if raw:
                for key, _ in self._index_keys(self._parse_session(session_id, raw)):
                    pipe.zrem(key, session_id)
            pipe.zrem(self._idx("updated"), session_id)
            for run_id in run_ids:
                pipe.delete(self.prefix + "run:" + run_id)
            for cp_id in cp_ids:
                pipe.delete(self.prefix + "cp:" + cp_id)
            for span in spans:
                self._unindex_span(pipe, span)
            return bool(raw)

        return self._transaction("delete session", transaction, keys[0])

    # -- messages -------------------------------------------------------------
    def append_messages(self, session_id: str, messages: Sequence[Message]) -> list[Message]:
        """One EVALSHA; the keys and arguments are built once, outside the retry loop."""
        if not messages:
            if not self._call("append", lambda: self._client.exists(self._key(session_id, "info"))):
                raise NotFound(f"session {session_id!r} not found")
            return list(messages)
        tag = f"{self.prefix}s:{{{session_id}}}:"
        keys = [tag + "info", tag + "msgs", tag + "ids"]
        if self.session_ttl:
            keys += [tag + "runs", tag + "cps"]
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

    # -- runs, spans, checkpoints ----------------------------------------------
    def _save_owned(self, kind: str, part: str, item_id: str, session_id: str, body: bytes) -> None:
        """Store a run or checkpoint in its session's hash plus an id -> session pointer."""
        pointer = self.prefix + kind + ":" + item_id

        def run() -> None:
            previous = self._client.get(pointer)
            pipe = self._client.pipeline(transaction=True)
            if previous is not None and previous.decode() != session_id:
                pipe.hdel(self._key(previous.decode(), part), item_id)
            pipe.hset(self._key(session_id, part), item_id, body)
            pipe.set(pointer, session_id, ex=self.session_ttl or None)
            if self.session_ttl:
                pipe.expire(self._key(session_id, part), self.session_ttl)
            pipe.execute()

        self._call(f"save {kind}", run)

    def _get_owned(self, kind: str, part: str, item_id: str) -> bytes | None:
        def run() -> bytes | None:
            owner = self._client.get(self.prefix + kind + ":" + item_id)
            if owner is None:
                return None
            body: bytes | None = self._client.hget(self._key(owner.decode(), part), item_id)
            return body

        return self._call(f"get {kind}", run)

    def save_run(self, run: Run) -> None:
        body = dumps(
            [
                run.id,
                run.session_id,
                run.model,
                run.status,
                run.input_tokens,
                run.output_tokens,
                to_us(run.started_at),
                None if run.ended_at is None else to_us(run.ended_at),
                run.error,
                run.metadata,
            ]
        )
        self._save_owned("run", "runs", run.id, run.session_id, body)

    def get_run(self, run_id: str) -> Run:
        body = self._get_owned("run", "runs", run_id)
        if body is None:
            raise NotFound(f"run {run_id!r} not found")
        return parse_run(body)

    def list_runs(self, session_id: str, *, limit: int | None = None) -> list[Run]:
        bodies = self._call("list runs", lambda: self._client.hvals(self._key(session_id, "runs")))
        runs = sorted((parse_run(b) for b in bodies), key=lambda r: (r.started_at, r.id))
        return newest(runs, limit)

    def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        c = checkpoint
        body = dumps([c.id, c.session_id, c.seq, c.state, c.label, to_us(c.created_at)])
        self._save_owned("cp", "cps", c.id, c.session_id, body)

    def get_checkpoint(self, checkpoint_id: str) -> Checkpoint:
        body = self._get_owned("cp", "cps", checkpoint_id)
        if body is None:
            raise NotFound(f"checkpoint {checkpoint_id!r} not found")
        return parse_checkpoint(body)

    def list_checkpoints(self, session_id: str) -> list[Checkpoint]:
        bodies = self._call(
            "list checkpoints", lambda: self._client.hvals(self._key(session_id, "cps"))
        )
        found = [parse_checkpoint(b) for b in bodies]
        return sorted(found, key=lambda c: (c.created_at, c.id))

    def delete_checkpoint(self, checkpoint_id: str) -> bool:
        pointer = self.prefix + "cp:" + checkpoint_id

        def run() -> bool:
            owner = self._client.get(pointer)
            if owner is None:
                return False
            pipe = self._client.pipeline(transaction=True)
            pipe.hdel(self._key(owner.decode(), "cps"), checkpoint_id)
            pipe.delete(pointer)
            removed, _ = pipe.execute()
            return bool(removed)

        return self._call("delete checkpoint", run)

    def _spans_index(self, kind: str, value: str | None = None) -> str:
        return f"{self.prefix}spans:{kind}" + ("" if value is None else f":{value}")

    def _span_indexes(self, span: Span) -> list[str]:
        keys = [self._spans_index("all"), self._spans_index("trace", span.trace_id)]
        if span.session_id is not None:
            keys.append(self._spans_index("session", span.session_id))
        if span.user_id is not None:
            keys.append(self._spans_index("user", span.user_id))
        return keys

    def _load_spans(self, span_ids: list[str], client: Any = None) -> list[Span]:
        if not span_ids:
            return []
        bodies = (client or self._client).mget([self.prefix + "span:" + i for i in span_ids])
        return [parse_span(b) for b in bodies if b is not None]

    def _unindex_span(self, pipe: Any, span: Span) -> None:
        pipe.delete(self.prefix + "span:" + span.id)
        for key in self._span_indexes(span):
            pipe.zrem(key, span.id)

    def save_span(self, span: Span) -> None:
        body = dumps(
            [
                span.trace_id,
                span.name,
                span.id,
                span.parent_id,
                span.session_id,
                span.user_id,
                span.status,
                span.attributes,
                to_us(span.started_at),
                None if span.ended_at is None else to_us(span.ended_at),
            ]
        )

        def run() -> None:
            previous = self._load_spans([span.id])
            pipe = self._client.pipeline(transaction=True)
            for old in previous:
                self._unindex_span(pipe, old)
            pipe.set(self.prefix + "span:" + span.id, body)
            for key in self._span_indexes(span):
                pipe.zadd(key, {span.id: to_us(span.started_at)})
            pipe.execute()

        self._call("save span", run)

    def list_spans(
        self,
        *,
        trace_id: str | None = None,
        session_id: str | None = None,
        user_id: str | None = None,
        roots_only: bool = False,
        limit: int | None = None,
    ) -> list[Span]:
        if trace_id is not None:
            index = self._spans_index("trace", trace_id)
        elif session_id is not None:
            index = self._spans_index("session", session_id)
        elif user_id is not None:
            index = self._spans_index("user", user_id)
        else:
            index = self._spans_index("all")

        def run() -> list[Span]:
            ids = [m.decode() for m in self._client.zrange(index, 0, -1)]
            return self._load_spans(ids)

        spans = sorted(
            (
                s
                for s in self._call("list spans", run)
                if (trace_id is None or s.trace_id == trace_id)
                and (session_id is None or s.session_id == session_id)
                and (user_id is None or s.user_id == user_id)
                and (not roots_only or s.parent_id is None)
            ),
            key=lambda s: (s.started_at, s.id),
        )
        return newest(spans, limit)


def _transient(exc: BaseException) -> bool:
    return isinstance(
        exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
    ) and not isinstance(exc, redis.exceptions.AuthenticationError)
