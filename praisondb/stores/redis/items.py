"""Runs, checkpoints and spans on Redis, laid out so that each write step stays in one slot.

An item lives in its *home* hash, keyed by item id: a run or checkpoint in its session's
``s:{<session>}:runs`` / ``:cps``, a span in ``s:{<session>}:spans`` or, without a
session, in ``t:{<trace>}:spans``. Deleting a session is then one atomic step in the
session's slot. Lookups by id go through a pointer in its own slot (``run:<id>`` and
``cp:<id>`` hold the session id; ``span:<id>`` holds ``[session, trace, user]``), and
spans are also listed from ``spans:all | spans:trace:<t> | spans:user:<u>`` zsets.

Pointers and indexes cannot change in the same step as a home (other slots), so they
are derived data that readers verify:

- a copy in a home whose pointer names another home is stale (a move that crashed
  half-way) and is hidden; a missing pointer (expired with a session TTL) hides nothing;
- an index entry whose span is gone or no longer matches is dropped when a listing
  meets it, and the span's current entries are then written again, so a drop that
  races with a save can never leave a live span unindexed.

Writes order their steps so that a crash between any two leaves either the old or the
new record visible: index entries first, then the pointer (for a new item) or the new
home (for a moved one), then the rest.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

import orjson

from ...errors import NotFound
from ...model import Checkpoint, Run, Span
from .._kit import id_matches, newest
from .codec import (
    DELETE_IF_EQUAL,
    dumps,
    hash_tag,
    parse_checkpoint,
    parse_run,
    parse_span,
    to_us,
)
from .core import RedisCore

T = TypeVar("T")


class RedisItemsMixin(RedisCore):
    """The runs/checkpoints/spans half of RedisStore (kept apart to keep modules small)."""

    def _pointer(self, kind: str, item_id: str) -> str:
        return f"{self.prefix}{kind}:{item_id}"

    def _pipeline(self) -> Any:
        """A plain (non-transactional) pipeline: on a cluster it is split per node."""
        return self._client.pipeline(transaction=False)

    # -- runs and checkpoints: a session hash plus an id -> session pointer -------------
    def _save_owned(self, kind: str, part: str, item_id: str, session_id: str, body: bytes) -> None:
        pointer = self._pointer(kind, item_id)
        home = self._key(session_id, part)
        ttl = self.session_ttl or None

        def run() -> None:
            previous = self._client.get(pointer)
            pipe = self._pipeline()
            if previous is None:  # pointer first: a crash leaves nothing listed or found
                pipe.set(pointer, session_id, ex=ttl)
                pipe.hset(home, item_id, body)
            else:  # new home first: while the pointer names the old one, this copy is hidden
                pipe.hset(home, item_id, body)
                pipe.set(pointer, session_id, ex=ttl)
                if previous.decode() != session_id:
                    pipe.hdel(self._key(previous.decode(), part), item_id)
            if ttl:
                pipe.expire(home, ttl)
            pipe.execute()

        self._call(f"save {kind}", run)

    def _get_owned(self, kind: str, part: str, item_id: str) -> bytes | None:
        def run() -> bytes | None:
            owner = self._client.get(self._pointer(kind, item_id))
            if owner is None:
                return None
            body: bytes | None = self._client.hget(self._key(owner.decode(), part), item_id)
            return body

        return self._call(f"get {kind}", run)

    def _list_owned(self, kind: str, part: str, session_id: str) -> list[bytes]:
        """The bodies in a session's hash, without stale copies of items moved elsewhere."""

        def run() -> list[bytes]:
            items: dict[bytes, bytes] = self._client.hgetall(self._key(session_id, part))
            if not items:
                return []
            pipe = self._pipeline()
            for item_id in items:
                pipe.get(self._pointer(kind, item_id.decode()))
            owners = pipe.execute()
            mine = session_id.encode()
            return [
                body
                for body, owner in zip(items.values(), owners, strict=True)
                if owner is None or owner == mine
            ]

        return self._call(f"list {kind}s", run)

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
        bodies = self._list_owned("run", "runs", session_id)
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
        found = [parse_checkpoint(b) for b in self._list_owned("cp", "cps", session_id)]
        return sorted(found, key=lambda c: (c.created_at, c.id))

    def delete_checkpoint(self, checkpoint_id: str) -> bool:
        pointer = self._pointer("cp", checkpoint_id)

        def run() -> bool:
            owner = self._client.get(pointer)
            if owner is None:
                return False
            pipe = self._pipeline()  # the copy first: a dangling pointer only means NotFound
            pipe.hdel(self._key(owner.decode(), "cps"), checkpoint_id)
            pipe.execute_command("EVAL", DELETE_IF_EQUAL, 1, pointer, owner)
            removed, _ = pipe.execute()
            return bool(removed)

        return self._call("delete checkpoint", run)

    # -- spans ----------------------------------------------------------------------
    def _span_home(self, session_id: str | None, trace_id: str) -> str:
        if session_id is not None:
            return self._key(session_id, "spans")
        return f"{self.prefix}t:{hash_tag(trace_id)}:spans"

    def _spans_index(self, kind: str, value: str | None = None) -> str:
        return f"{self.prefix}spans:{kind}" + ("" if value is None else f":{value}")

    def _span_entries(self, trace_id: str, user_id: str | None, score: int) -> dict[str, int]:
        """The index zsets a span belongs to, with its score (started_at in µs)."""
        entries = {self._spans_index("all"): score, self._spans_index("trace", trace_id): score}
        if user_id is not None:
            entries[self._spans_index("user", user_id)] = score
        return entries

    def _resolve_spans(self, span_ids: Iterable[str]) -> dict[str, Span]:
        """Span id -> span, through the pointers; ids whose span is gone are left out."""
        ids = list(dict.fromkeys(span_ids))
        if not ids:
            return {}
        pipe = self._pipeline()
        for span_id in ids:
            pipe.get(self._pointer("span", span_id))
        homes = [
            (span_id, self._span_home(*orjson.loads(raw)[:2]))
            for span_id, raw in zip(ids, pipe.execute(), strict=True)
            if raw is not None
        ]
        if not homes:
            return {}
        pipe = self._pipeline()
        for span_id, home in homes:
            pipe.hget(home, span_id)
        return {
            span_id: parse_span(body)
            for (span_id, _), body in zip(homes, pipe.execute(), strict=True)
            if body is not None
        }

    def _reindex_spans(self, span_ids: Iterable[str]) -> None:
        """Write the current index entries of these spans (after entries were dropped)."""
        spans = self._resolve_spans(span_ids)
        if spans:
            pipe = self._pipeline()
            for span in spans.values():
                entries = self._span_entries(span.trace_id, span.user_id, to_us(span.started_at))
                for key, score in entries.items():
                    pipe.zadd(key, {span.id: score})
            pipe.execute()

    def _reap_spans(self, dangling: list[tuple[str, str]]) -> None:
        """Drop (index, span id) entries a listing found invalid, then re-add live ones."""
        pipe = self._pipeline()
        for key, span_id in dangling:
            pipe.zrem(key, span_id)
        pipe.execute()
        self._reindex_spans(span_id for _, span_id in dangling)

    def _unlink_spans(self, pipe: Any, session_id: str, spans: Iterable[Span]) -> None:
        """Queue the removal of the pointers and index entries of a deleted session's spans."""
        for span in spans:
            pointer_value = dumps([session_id, span.trace_id, span.user_id])
            pipe.execute_command(
                "EVAL", DELETE_IF_EQUAL, 1, self._pointer("span", span.id), pointer_value
            )
            for key in self._span_entries(span.trace_id, span.user_id, 0):
                pipe.zrem(key, span.id)

    def get_span(self, span_id: str) -> Span:
        found = self._call("get span", lambda: self._resolve_spans([span_id]))
        if span_id not in found:
            raise NotFound(f"span {span_id!r} not found")
        return found[span_id]

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
        pointer = self._pointer("span", span.id)
        pointer_value = dumps([span.session_id, span.trace_id, span.user_id])
        home = self._span_home(span.session_id, span.trace_id)
        entries = self._span_entries(span.trace_id, span.user_id, to_us(span.started_at))

        def run() -> None:
            previous = self._client.get(pointer)
            pipe = self._pipeline()
            for key, score in entries.items():  # index entries first: verified on read
                pipe.zadd(key, {span.id: score})
            stale: list[str] = []
            if previous is None:
                pipe.set(pointer, pointer_value)
                pipe.hset(home, span.id, body)
            else:
                old_session, old_trace, old_user = orjson.loads(previous)
                pipe.hset(home, span.id, body)
                pipe.set(pointer, pointer_value)
                old_home = self._span_home(old_session, old_trace)
                if old_home != home:
                    pipe.hdel(old_home, span.id)
                stale = [k for k in self._span_entries(old_trace, old_user, 0) if k not in entries]
            if self.session_ttl and span.session_id is not None:
                pipe.expire(home, self.session_ttl)
            pipe.execute()
            # Again after the body: a listing may have dropped the entries in between.
            pipe = self._pipeline()
            for key in stale:
                pipe.zrem(key, span.id)
            for key, score in entries.items():
                pipe.zadd(key, {span.id: score})
            pipe.execute()
            if stale:  # a concurrent save may have moved the span back
                self._reindex_spans([span.id])

        self._call("save span", run)

    def list_spans(
        self,
        *,
        trace_id: str | None = None,
        session_id: str | None = None,
        user_id: str | None = None,
        roots_only: bool = False,
        limit: int | None = None,
        id_prefix: str | None = None,
        exclude_id_prefix: str | None = None,
    ) -> list[Span]:
        if trace_id is None and session_id is not None:
            bodies = self._list_spans_home(session_id)
            found = [parse_span(b) for b in bodies]
        else:
            if trace_id is not None:
                index = self._spans_index("trace", trace_id)
            elif user_id is not None:
                index = self._spans_index("user", user_id)
            else:
                index = self._spans_index("all")
            bounds = (id_prefix, exclude_id_prefix)
            found = self._call("list spans", lambda: self._list_spans_index(index, *bounds))
        spans = sorted(
            (
                s
                for s in found
                if (trace_id is None or s.trace_id == trace_id)
                and (session_id is None or s.session_id == session_id)
                and (user_id is None or s.user_id == user_id)
                and (not roots_only or s.parent_id is None)
                and id_matches(s.id, id_prefix, exclude_id_prefix)
            ),
            key=lambda s: (s.started_at, s.id),
        )
        return newest(spans, limit)

    def _list_spans_home(self, session_id: str) -> list[bytes]:
        def run() -> list[bytes]:
            items: dict[bytes, bytes] = self._client.hgetall(self._key(session_id, "spans"))
            if not items:
                return []
            pipe = self._pipeline()
            for span_id in items:
                pipe.get(self._pointer("span", span_id.decode()))
            return [
                body
                for body, raw in zip(items.values(), pipe.execute(), strict=True)
                if raw is None or orjson.loads(raw)[0] == session_id
            ]

        return self._call("list spans", run)

    def _list_spans_index(
        self, index: str, prefix: str | None = None, excluded: str | None = None
    ) -> list[Span]:
        """The spans an index names, those outside the id bounds left unread."""
        ids = [m.decode() for m in self._client.zrange(index, 0, -1)]
        ids = [i for i in ids if id_matches(i, prefix, excluded)]
        spans = self._resolve_spans(ids)
        dangling = {
            span_id
            for span_id in ids
            if span_id not in spans
            or index not in self._span_entries(spans[span_id].trace_id, spans[span_id].user_id, 0)
        }
        if dangling:
            self._reap_spans([(index, span_id) for span_id in dangling])
        return [spans[i] for i in ids if i in spans and i not in dangling]
