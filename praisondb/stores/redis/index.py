"""Sessions as Redis hashes, and the index zsets that list them.

The global indexes live in other cluster slots than the sessions they list, so they are
derived data: entries are written before and after the session, and every listing
verifies each entry against the session and drops (then repairs) what fails.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence

import orjson

from ...model import SessionInfo
from .._kit import id_matches, session_matches
from ..base import (
    SessionQuery,
    decode_session_cursor,
)
from .codec import (
    dumps,
    from_us,
    to_us,
)
from .core import RedisCore

_BATCH = 200
"""Index entries read per round trip while listing."""


def namespace(session_id: str) -> str | None:
    """The ``~T~`` namespace a session id lives in (the server's tenants), or None."""
    if session_id.startswith("~"):
        end = session_id.find("~", 1)
        if end > 1:
            return session_id[: end + 1]
    return None


class RedisSessionIndex(RedisCore):
    """Session hashes to SessionInfo and back; listing candidates from the best index."""

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
        space = namespace(info.id)
        if space is not None:
            entries[self._idx("ns", space)] = created
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

    def _index_for(self, query: SessionQuery) -> str:
        """The most selective index for a query."""
        if query.parent_id is not None:
            return self._idx("parent", query.parent_id)
        if query.user_id is not None:
            return self._idx("user", query.user_id)
        if query.agent is not None:
            return self._idx("agent", query.agent)
        if query.id_prefix and namespace(query.id_prefix) is not None:
            self._ensure_namespaces()
            return self._idx("ns", namespace(query.id_prefix))
        return self._idx("created")

    def _ensure_namespaces(self) -> None:
        """Index the namespaced sessions a store written before the ``ns`` indexes holds
        (once per store: a marker key says it is done; writers keep the indexes since)."""
        if getattr(self, "_namespaces_indexed", False):
            return
        marker = self._idx("ns-built")

        def build() -> None:
            if self._client.exists(marker):
                return
            start = 0
            while True:
                batch = self._client.zrange(
                    self._idx("created"), start, start + _BATCH - 1, withscores=True
                )
                pipe = self._client.pipeline(transaction=False)
                for member, score in batch:
                    space = namespace(member.decode())
                    if space is not None:
                        pipe.zadd(self._idx("ns", space), {member: score})
                pipe.execute()
                if len(batch) < _BATCH:
                    break
                start += _BATCH
            self._client.set(marker, b"1")

        self._call("index session namespaces", build)
        self._namespaces_indexed = True

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
            bounds = (query.id_prefix, query.exclude_id_prefix)
            wanted = [e for e in fresh if id_matches(e[1], *bounds)]  # others left unread
            ids = [session_id for _, session_id in wanted]
            raws = self._call("list sessions", functools.partial(self._hgetall_many, ids))
            for (score, session_id), raw in zip(wanted, raws, strict=True):
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
