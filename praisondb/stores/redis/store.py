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
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast
from urllib.parse import parse_qsl, urlencode

import redis
import redis.backoff
import redis.exceptions
import redis.retry

from ...errors import ConfigError, Conflict, NotFound
from ...gc_pause import no_gc_pauses
from ...model import Message, Page, SessionInfo, Span, utcnow
from ...options import (
    AUTO_MIGRATE,
    RETRY_ATTEMPTS,
    Option,
    OptionTable,
    as_bool,
    as_float,
    as_int,
    as_text,
    at_least,
    blank_as,
    positive,
)
from ...retry import Retry
from ...urls import StoreURL
from ..base import (
    UNSET,
    Capability,
    SessionQuery,
    merge_metadata,
    session_cursor,
)
from .aio import CallGate, ClusterTransactions
from .clients import async_settings, cluster_client, plain_client, pool_size
from .codec import (
    APPEND,
    DELETE_IF_EQUAL,
    DELETE_MESSAGES,
    PUT_MESSAGES,
    STATE_DELETE,
    STATE_INCR,
    STATE_SET,
    dumps,
    hash_tag,
    now_us,
    parse_message,
    parse_span,
    query_fields,
    to_us,
)
from .index import RedisSessionIndex
from .items import RedisItemsMixin
from .memories import RedisMemoriesMixin
from .state import RedisStateMixin

T = TypeVar("T")
OPTIONS = OptionTable(
    AUTO_MIGRATE,
    Option("prefix", as_text, "praisondb:", doc="namespaces several apps on one server"),
    Option(
        "session_ttl", blank_as(as_int, 0), 0, at_least(0), "must be >= 0", "seconds without writes"
    ),
    Option("timeout", as_float, 5.0, positive, "must be > 0", "seconds per network call"),
    Option("connect_timeout", as_float, doc="seconds to connect", same_as="timeout"),
    RETRY_ATTEMPTS,
    Option("cluster", blank_as(as_bool, False), False, doc="use the Redis Cluster client"),
    driver_query=True,
)


class RedisStore(RedisSessionIndex, RedisItemsMixin, RedisStateMixin, RedisMemoriesMixin):
    """Conversations and state on one Redis server or a Redis Cluster.

    Options (keyword or URL query): ``prefix`` namespaces several apps on one server;
    ``session_ttl`` (seconds) expires a session after that long without writes;
    ``timeout``/``connect_timeout`` (seconds, default 5) bound each network call;
    ``retry_attempts`` (default 3) is how often a connection error is tried;
    ``cluster`` (default false) uses the Redis Cluster client.

    Keyword only, with ``cluster``: ``address_remap``, a callable ``(host, port) -> (host,
    port)`` handed to ``RedisCluster(address_remap=...)``; it maps the addresses the nodes
    announce (``CLUSTER SLOTS``, MOVED) to ones this client can reach, e.g. through a NAT
    or a proxy.

    ``io="async"`` (what the async face passes): the same store on ``redis.asyncio``
    (:mod:`.clients`); at most the URL's ``max_connections`` calls (default 50; the pool
    size, per node on a cluster) run at once, the others queue in turn for up to
    ``timeout`` (:mod:`.aio`).
    """

    capabilities: frozenset[Capability] = frozenset(
        {Capability.PERSISTENT, Capability.MULTI_PROCESS}
    )

    async_io = "driver"
    """``io="async"``: the ``redis.asyncio`` twin of the client (see :mod:`.clients`)."""

    def __init__(self, url: StoreURL, *, io: str = "sync", **options: Any) -> None:
        if io not in ("sync", "async"):
            raise ConfigError(f"io must be 'sync' or 'async', not {io!r}")
        self._io = io
        remap = _address_remap(url, options.pop("address_remap", None))
        self.url = url
        values = OPTIONS.read(url, options)
        self.prefix = values["prefix"]
        if "{" in self.prefix or "}" in self.prefix:
            raise ConfigError("the redis key prefix must not contain '{' or '}' (hash tags)")
        self.session_ttl: int = values["session_ttl"]
        timeout, connect_timeout = values["timeout"], values["connect_timeout"]
        attempts: int = values["retry_attempts"]
        self.cluster: bool = values["cluster"]
        self._retry = Retry(attempts=attempts)
        self._shown = url.redacted  # computed once: _call runs on every operation
        base, _, query = url.secret.partition("?")
        rest = [
            (k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k not in OPTIONS.names
        ]
        driver_url = base + ("?" + urlencode(rest) if rest else "")
        settings: dict[str, Any] = {
            "socket_timeout": timeout,
            "socket_connect_timeout": connect_timeout,
            "retry": redis.retry.Retry(redis.backoff.NoBackoff(), 0),  # ours retries
            "health_check_interval": 0,
        }
        self._gate: CallGate | None = None
        self._cluster_tx: ClusterTransactions | None = None
        if self.cluster:
            if remap is not None:
                settings["address_remap"] = remap
            self._client: Any = self._call(
                "connect", functools.partial(cluster_client, url, driver_url, settings, io)
            )
            if io == "async":  # see .aio
                self._cluster_tx = ClusterTransactions(
                    self._client.unwrapped,
                    driver_url,
                    async_settings(settings),
                    pool_size(driver_url),
                    timeout,
                )
        else:
            if remap is not None:
                raise ConfigError(
                    f"address_remap is for a Redis Cluster: add ?cluster=true to "
                    f"{url.redacted} or drop the option"
                )
            self._client = plain_client(url, driver_url, settings, io)
        if io == "async":  # callers queue for the pool in turn (see .aio.CallGate)
            self._gate = CallGate(pool_size(driver_url), timeout)
        self._append = self._client.register_script(APPEND)
        self._put_messages_script = self._client.register_script(PUT_MESSAGES)
        self._delete_messages_script = self._client.register_script(DELETE_MESSAGES)
        self._state_set = self._client.register_script(STATE_SET)
        self._state_delete = self._client.register_script(STATE_DELETE)
        self._state_incr = self._client.register_script(STATE_INCR)
        self._register_memory_scripts()

    # -- sessions -------------------------------------------------------------

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
        with no_gc_pauses():
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


AddressRemap = Callable[[tuple[str, int]], tuple[str, int]]
"""``(host, port)`` a cluster node announces -> ``(host, port)`` to connect to."""


def _address_remap(url: StoreURL, remap: Any) -> AddressRemap | None:
    """The ``address_remap`` keyword, checked: a callable (so never from the URL's text)."""
    if "address_remap" in url.options:
        raise ConfigError(
            f"address_remap cannot come from the URL {url.redacted}: pass a callable "
            "as the keyword option address_remap=..."
        )
    if remap is None:
        return None
    if not callable(remap):
        raise ConfigError(
            f"address_remap must be a callable (host, port) -> (host, port), not {remap!r}"
        )
    user_remap = cast("AddressRemap", remap)

    def checked(address: tuple[str, int]) -> tuple[str, int]:
        """The caller's remap; its own failure is a ConfigError, not a driver crash."""
        try:
            host, port = user_remap(address)
        except Exception as exc:  # noqa: BLE001 - any failure of the caller's callable
            raise ConfigError(
                f"address_remap failed for {address}: {type(exc).__name__}: {exc}; "
                "it must return a (host, port) pair for every node address"
            ) from None
        return str(host), int(port)

    return checked
