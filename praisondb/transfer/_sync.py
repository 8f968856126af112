"""Bring one session of the target up to date with the source: the heart of copy and import.

Write order is what makes a killed copy safe to re-run:

1. a *provisional* session record (``last_seq`` 0, ``updated_at`` = ``created_at``),
   so messages have a session to belong to;
2. runs, checkpoints and spans;
3. messages in ``seq`` order, one idempotent ``put_messages`` batch at a time;
4. the exact source record (timestamps, counters) -- only now can the target record
   equal the source record, and that equality is the "already done" test of a re-run.

A re-run therefore resumes a half-copied session after the highest ``seq`` the target
holds, and never duplicates anything (``put_messages`` skips known ids).

Sessions the target lacks entirely, and that fit in one batch, take a faster road when
the target can load whole sessions: see :mod:`._bulk`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields, replace
from typing import Any, TypeVar

import orjson

from ..errors import Conflict, ConflictAbort, NotFound
from ..model import Message, SessionInfo, StateEntry
from ..stores.base import ConversationStore, StateStore
from ._reports import OnConflict, SessionDiff, Tracker
from ._sources import SourceSession
from .archive import (
    canonical_message,
    checkpoint_record,
    message_record,
    run_record,
    span_record,
    state_record,
)

T = TypeVar("T")
SESSION_FIELDS = tuple(f.name for f in fields(SessionInfo))


@dataclass(frozen=True)
class SyncOptions:
    batch_size: int = 1000
    on_conflict: OnConflict = "skip"
    dry_run: bool = False
    session_state: bool = False
    """Also bring the ``session:<id>`` state scope along (filtered copies)."""
    count_bytes: bool = False


def records_equal(a: SessionInfo, b: SessionInfo) -> bool:
    return all(getattr(a, name) == getattr(b, name) for name in SESSION_FIELDS)


def differing_fields(a: SessionInfo, b: SessionInfo) -> list[str]:
    return [name for name in SESSION_FIELDS if getattr(a, name) != getattr(b, name)]


def identity_problem(source: SessionInfo, target: SessionInfo) -> str | None:
    """Why the target's session cannot be an earlier copy of the source's, or None.

    ``updated_at`` is deliberately not compared: some stores move it when
    ``put_messages`` lands, so a half-copied session may look newer than its source.
    Title and metadata follow the source.
    """
    if source.created_at != target.created_at:
        return (
            f"a different session has this id in the target (created {target.created_at.isoformat()}"
            f", source {source.created_at.isoformat()})"
        )
    if (source.parent_id, source.forked_at_seq) != (target.parent_id, target.forked_at_seq):
        return "branch point (parent_id/forked_at_seq) differs"
    if target.last_seq > source.last_seq:
        return f"target is ahead (last seq {target.last_seq} > source {source.last_seq})"
    return None


class SessionSyncer:
    """Applies one source session to a target; safe to call from several threads."""

    def __init__(
        self,
        target: ConversationStore,
        target_state: StateStore | None,
        source_state: StateStore | None,
        options: SyncOptions,
        tracker: Tracker,
        on_batch: Callable[[str, int], None] | None = None,
    ) -> None:
        self.target = target
        self.target_state = target_state
        self.source_state = source_state
        self.options = options
        self.tracker = tracker
        self.on_batch = on_batch

    # -- entry point ------------------------------------------------------------------
    def sync(self, src: SourceSession) -> str:
        """Returns the outcome: created, updated, unchanged, replaced or conflicting."""
        source = src.info
        current = self._get(source.id)
        outcome = "created"
        if current is not None:
            if self.options.on_conflict == "overwrite" and not records_equal(source, current):
                if not self.options.dry_run:
                    self.target.delete_session(source.id)
                current, outcome = None, "replaced"
            else:
                problem = identity_problem(source, current)
                if problem is not None:
                    return self._conflict(source.id, problem)
        if current is None:
            if not self.options.dry_run:
                self.target.put_session(_provisional(source))
            self.children(src, fresh=True)
            moved = self._messages(src, after=0, boundary=None)
        else:
            changed = self.children(src, fresh=False)
            if records_equal(source, current):
                self.session_state(source.id)
                outcome = "updated" if changed else "unchanged"
                self.tracker.session_done(outcome)
                return outcome
            outcome = "updated"
            tail = self.target.list_messages(source.id, last=1)
            moved = self._messages(
                src, after=tail[0].seq if tail else 0, boundary=tail[0] if tail else None
            )
        if isinstance(moved, str):
            return self._conflict(source.id, moved)
        if not self.options.dry_run:
            self.target.put_session(source)
        self.session_state(source.id)
        self.tracker.session_done(outcome)
        return outcome

    # -- pieces -------------------------------------------------------------------------
    def _get(self, session_id: str) -> SessionInfo | None:
        try:
            return self.target.get_session(session_id)
        except NotFound:
            return None

    def _conflict(self, session_id: str, problem: str) -> str:
        if self.options.on_conflict == "fail":
            raise ConflictAbort(f"session {session_id!r}: {problem} (on_conflict='fail')")
        self.tracker.report.add_conflict(SessionDiff(session_id, [problem]))
        self.tracker.session_done("conflicting")
        return "conflicting"

    def children(self, src: SourceSession, *, fresh: bool) -> bool:
        """Runs, checkpoints and spans: write those the target lacks or holds differently."""
        sid = src.info.id
        runs = _missing(src.runs(), () if fresh else self.target.list_runs(sid))
        checkpoints = _missing(
            src.checkpoints(), () if fresh else self.target.list_checkpoints(sid)
        )
        spans = _missing(src.spans(), () if fresh else self.target.list_spans(session_id=sid))
        if not self.options.dry_run:
            for run in runs:
                self.target.save_run(run)
            for checkpoint in checkpoints:
                self.target.save_checkpoint(checkpoint)
            for span in spans:
                self.target.save_span(span)
        size = 0
        if self.options.count_bytes:
            size = sum(_size(run_record(r)) for r in runs)
            size += sum(_size(checkpoint_record(c)) for c in checkpoints)
            size += sum(_size(span_record(s)) for s in spans)
        if runs or checkpoints or spans or size:
            self.tracker.add(
                runs_copied=len(runs),
                checkpoints_copied=len(checkpoints),
                spans_copied=len(spans),
                bytes=size,
            )
        return bool(runs or checkpoints or spans)

    def _messages(self, src: SourceSession, *, after: int, boundary: Message | None) -> str | None:
        """Copy messages with seq above ``after``; a problem string means a conflict."""
        sid = src.info.id
        start = after - 1 if boundary is not None else after
        checked = boundary is None
        for batch in src.messages(start, self.options.batch_size):
            if not checked:
                checked = True
                first = batch[0]
                if first.seq != after:
                    return f"target holds message seq {after} which the source does not"
                if canonical_message(first) != canonical_message(boundary):  # type: ignore[arg-type]
                    return f"message seq {after} differs between source and target"
                batch = batch[1:]
                if not batch:
                    continue
            if self.options.dry_run:
                inserted = len(batch)
            else:
                try:
                    inserted = self.target.put_messages(sid, batch)
                except Conflict as exc:
                    return f"message conflict: {exc}"
            size = sum(_size(message_record(m)) for m in batch) if self.options.count_bytes else 0
            self.tracker.add(messages_copied=inserted, bytes=size)
            if self.on_batch is not None:
                self.on_batch(sid, batch[-1].seq)
        if not checked:
            return f"target holds message seq {after} which the source does not"
        return None

    def session_state(self, session_id: str) -> None:
        if not self.options.session_state or self.source_state is None:
            return
        scope = f"session:{session_id}"
        wanted = self.source_state.list_entries(scope)
        have = [] if self.target_state is None else self.target_state.list_entries(scope)
        changed = _missing(wanted, have, key=lambda e: (e.scope, e.key), same=state_equal)
        self.write_state(changed)

    def write_state(self, entries: list[StateEntry]) -> None:
        if not entries:
            return
        if not self.options.dry_run and self.target_state is not None:
            self.target_state.put_entries(entries)
        size = sum(_size(state_record(e)) for e in entries) if self.options.count_bytes else 0
        self.tracker.add(state_copied=len(entries), bytes=size)


def state_equal(a: StateEntry, b: StateEntry) -> bool:
    """Value, version and absolute expiry; ``updated_at`` is informational."""
    return (a.value, a.version, a.expires_at) == (b.value, b.version, b.expires_at) and (
        orjson.dumps(a.value, option=orjson.OPT_SORT_KEYS)
        == orjson.dumps(b.value, option=orjson.OPT_SORT_KEYS)
    )


def _provisional(info: SessionInfo) -> SessionInfo:
    return replace(info, last_seq=0, message_count=0, updated_at=info.created_at)


def _missing(
    wanted: Iterable[T],
    have: Iterable[T],
    *,
    key: Callable[[T], Any] = lambda item: item.id,  # type: ignore[attr-defined]
    same: Callable[[T, T], bool] = lambda a, b: a == b,
) -> list[T]:
    existing = {key(item): item for item in have}
    return [
        item for item in wanted if (old := existing.get(key(item))) is None or not same(item, old)
    ]


def _size(record: dict[str, Any]) -> int:
    return len(orjson.dumps(record)) + 1
