"""In-process store: the reference implementation of both protocols.

Everything is deep-copied in and out, so callers can never mutate stored data.
"""

from __future__ import annotations

import bisect
import copy
import threading
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from ..errors import Conflict, NotFound, ValidationError
from ..model import JSON, Checkpoint, Message, Page, Run, SessionInfo, Span, StateEntry, utcnow
from ..options import AUTO_MIGRATE, OptionTable
from ..urls import StoreURL
from ..validation import INT_MAX, INT_MIN, incr_overflow
from ._kit import (
    check_version,
    id_matches,
    newest,
    page_sessions,
    scan_sorted_keys,
    select_sessions,
)
from ._memories import MemoryTable, TableMemories
from .base import (
    UNSET,
    Capability,
    SessionQuery,
    merge_metadata,
    new_write_token,
)

T = TypeVar("T")


def _copy(value: T) -> T:
    return copy.deepcopy(value)


OPTIONS = OptionTable(
    AUTO_MIGRATE,
)


class _StateTable(dict[tuple[str, str], StateEntry]):
    """State entries by (scope, key), with each scope's keys kept sorted, so listing a
    scope is a bisect into its keys and a walk of the ones wanted (LangGraph's
    ``list(limit=10)``), not a sort of every key in the store."""

    def __init__(self) -> None:
        super().__init__()
        self.keys_by_scope: dict[str, list[str]] = {}

    def __setitem__(self, item: tuple[str, str], entry: StateEntry) -> None:
        if item not in self:
            bisect.insort(self.keys_by_scope.setdefault(item[0], []), item[1])
        super().__setitem__(item, entry)

    def __delitem__(self, item: tuple[str, str]) -> None:
        super().__delitem__(item)
        self._forget(item)

    def pop(self, item: tuple[str, str], *default: Any) -> Any:
        if item in self:
            self._forget(item)
        return super().pop(item, *default)

    def _forget(self, item: tuple[str, str]) -> None:
        keys = self.keys_by_scope[item[0]]
        del keys[bisect.bisect_left(keys, item[1])]
        if not keys:
            del self.keys_by_scope[item[0]]


class MemoryStore(TableMemories):
    capabilities: frozenset[Capability] = frozenset()
    async_io = "inline"
    """No I/O: the async face calls it straight from its greenlets."""

    def __init__(self, url: StoreURL, **options: Any) -> None:
        OPTIONS.read(url, options)  # refuses unknown names like every store
        self.url = url
        self._lock = threading.RLock()
        self._sessions: dict[str, SessionInfo] = {}
        self._messages: dict[str, list[Message]] = {}
        self._message_ids: dict[str, set[str]] = {}
        self._runs: dict[str, Run] = {}
        self._spans: dict[str, Span] = {}
        self._checkpoints: dict[str, Checkpoint] = {}
        self._state = _StateTable()
        self._memories = MemoryTable()
        self._tokens: dict[tuple[str, str], str] = {}
        """The write token of each entry's last set/incr (see StateStore.set_entry)."""

    def ping(self) -> None:
        return None

    def schema_version(self) -> str | None:
        return None

    def close(self) -> None:
        return None

    # -- sessions -------------------------------------------------------------
    def create_session(self, info: SessionInfo) -> SessionInfo:
        with self._lock:
            if info.id in self._sessions:
                raise Conflict(f"session {info.id!r} already exists")
            stored = _copy(info)
            stored.message_count = stored.last_seq = 0
            self._sessions[info.id] = stored
            self._messages[info.id] = []
            self._message_ids[info.id] = set()
            return _copy(stored)

    def put_session(self, info: SessionInfo) -> None:
        with self._lock:
            stored = _copy(info)
            existing = self._sessions.get(info.id)
            messages = self._messages.setdefault(info.id, [])
            self._message_ids.setdefault(info.id, set())
            if existing is not None:
                stored.last_seq = max(stored.last_seq, existing.last_seq)
            stored.message_count = len(messages)
            if messages:
                stored.last_seq = max(stored.last_seq, messages[-1].seq)
            self._sessions[info.id] = stored

    def _session(self, session_id: str) -> SessionInfo:
        try:
            return self._sessions[session_id]
        except KeyError:
            raise NotFound(f"session {session_id!r} not found") from None

    def get_session(self, session_id: str) -> SessionInfo:
        with self._lock:
            return _copy(self._session(session_id))

    def list_sessions(self, query: SessionQuery) -> Page[SessionInfo]:
        with self._lock:
            page = page_sessions(select_sessions(self._sessions.values(), query), query)
            return Page([_copy(s) for s in page.items], page.next_cursor)

    def count_sessions(self, query: SessionQuery) -> int:
        with self._lock:
            return len(select_sessions(self._sessions.values(), query))

    def update_session(
        self,
        session_id: str,
        *,
        title: str | None = UNSET,
        metadata: dict[str, Any] | None = None,
        replace_metadata: bool = False,
    ) -> SessionInfo:
        with self._lock:
            info = self._session(session_id)
            if title is not UNSET:
                info.title = title
            info.metadata = merge_metadata(info.metadata, _copy(metadata), replace_metadata)
            info.updated_at = max(utcnow(), info.updated_at)
            return _copy(info)

    def delete_session(self, session_id: str) -> bool:
        with self._lock:
            if self._sessions.pop(session_id, None) is None:
                return False
            self._messages.pop(session_id, None)
            self._message_ids.pop(session_id, None)
            for table in (self._runs, self._spans, self._checkpoints):
                for key in [k for k, v in table.items() if v.session_id == session_id]:
                    del table[key]
            return True

    # -- messages -------------------------------------------------------------
    def append_messages(self, session_id: str, messages: Sequence[Message]) -> list[Message]:
        with self._lock:
            info = self._session(session_id)
            stored = self._messages[session_id]
            ids = self._message_ids[session_id]
            batch_ids = {m.id for m in messages}
            if len(batch_ids) < len(messages):
                raise Conflict("the same message id appears twice in one batch")
            for message in messages:
                if message.id in ids:
                    raise Conflict(f"message {message.id!r} already exists")
            for message in messages:
                info.last_seq += 1
                message.seq = info.last_seq
                message.session_id = session_id
                stored.append(_copy(message))
                ids.add(message.id)
            if messages:
                info.message_count += len(messages)
                info.updated_at = max(utcnow(), info.updated_at)
            return list(messages)

    def _fresh_messages(self, session_id: str, messages: Sequence[Message]) -> list[Message]:
        """The messages not stored yet; Conflict if one's seq is held by another id."""
        ids = self._message_ids.get(session_id, set())
        seqs = {m.seq: m.id for m in self._messages.get(session_id, [])}
        fresh = []
        for message in messages:
            if message.id in ids:
                continue
            holder = seqs.setdefault(message.seq, message.id)
            if holder != message.id:
                raise Conflict(f"seq {message.seq} of session {session_id!r} is held by {holder!r}")
            fresh.append(message)
        return fresh

    def put_messages(self, session_id: str, messages: Sequence[Message]) -> int:
        with self._lock:
            info = self._session(session_id)
            fresh = self._fresh_messages(session_id, messages)
            stored = self._messages[session_id]
            ids = self._message_ids[session_id]
            for message in fresh:
                item = _copy(message)
                item.session_id = session_id
                bisect.insort(stored, item, key=lambda m: m.seq)
                ids.add(message.id)
                info.last_seq = max(info.last_seq, message.seq)
            info.message_count = len(stored)
            return len(fresh)

    def put_session_batch(self, items: Sequence[tuple[SessionInfo, Sequence[Message]]]) -> int:
        with self._lock:
            for info, messages in items:  # every check before any write: all or nothing
                self._fresh_messages(info.id, messages)
            inserted = 0
            for info, messages in items:
                self.put_session(info)
                inserted += self.put_messages(info.id, messages)
            return inserted

    def list_messages(
        self,
        session_id: str,
        *,
        after_seq: int | None = None,
        before_seq: int | None = None,
        last: int | None = None,
        limit: int | None = None,
    ) -> list[Message]:
        with self._lock:
            stored = self._messages.get(session_id, [])
            lo = (
                0
                if after_seq is None
                else bisect.bisect_right(stored, after_seq, key=lambda m: m.seq)
            )
            hi = (
                len(stored)
                if before_seq is None
                else bisect.bisect_left(stored, before_seq, key=lambda m: m.seq)
            )
            window = stored[lo:hi]
            if last is not None:
                window = window[-last:] if last > 0 else []
            if limit is not None:
                window = window[:limit]
            return [_copy(m) for m in window]

    def get_messages(self, session_id: str, ids: Sequence[str]) -> list[Message]:
        wanted = set(ids)
        with self._lock:
            return [_copy(m) for m in self._messages.get(session_id, []) if m.id in wanted]

    def count_messages(self, session_id: str) -> int:
        with self._lock:
            return len(self._messages.get(session_id, []))

    def delete_messages(
        self, session_id: str, *, from_seq: int | None = None, to_seq: int | None = None
    ) -> int:
        with self._lock:
            stored = self._messages.get(session_id)
            if not stored:
                return 0
            lo = -(2**63) if from_seq is None else from_seq
            hi = 2**63 if to_seq is None else to_seq
            keep = [m for m in stored if not lo <= m.seq <= hi]
            removed = len(stored) - len(keep)
            if removed:
                self._messages[session_id] = keep
                self._message_ids[session_id] = {m.id for m in keep}
                info = self._sessions[session_id]
                info.message_count = len(keep)
                info.updated_at = max(utcnow(), info.updated_at)
            return removed

    # -- runs, spans, checkpoints ----------------------------------------------
    def save_run(self, run: Run) -> None:
        with self._lock:
            self._runs[run.id] = _copy(run)

    def get_run(self, run_id: str) -> Run:
        with self._lock:
            try:
                return _copy(self._runs[run_id])
            except KeyError:
                raise NotFound(f"run {run_id!r} not found") from None

    def list_runs(self, session_id: str, *, limit: int | None = None) -> list[Run]:
        with self._lock:
            runs = sorted(
                (r for r in self._runs.values() if r.session_id == session_id),
                key=lambda r: (r.started_at, r.id),
            )
            return [_copy(r) for r in newest(runs, limit)]

    def save_span(self, span: Span) -> None:
        with self._lock:
            self._spans[span.id] = _copy(span)

    def get_span(self, span_id: str) -> Span:
        with self._lock:
            try:
                return _copy(self._spans[span_id])
            except KeyError:
                raise NotFound(f"span {span_id!r} not found") from None

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
        with self._lock:
            spans = sorted(
                (
                    s
                    for s in self._spans.values()
                    if (trace_id is None or s.trace_id == trace_id)
                    and (session_id is None or s.session_id == session_id)
                    and (user_id is None or s.user_id == user_id)
                    and (not roots_only or s.parent_id is None)
                    and id_matches(s.id, id_prefix, exclude_id_prefix)
                ),
                key=lambda s: (s.started_at, s.id),
            )
            return [_copy(s) for s in newest(spans, limit)]

    def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        with self._lock:
            self._checkpoints[checkpoint.id] = _copy(checkpoint)

    def get_checkpoint(self, checkpoint_id: str) -> Checkpoint:
        with self._lock:
            try:
                return _copy(self._checkpoints[checkpoint_id])
            except KeyError:
                raise NotFound(f"checkpoint {checkpoint_id!r} not found") from None

    def list_checkpoints(self, session_id: str) -> list[Checkpoint]:
        with self._lock:
            found = [c for c in self._checkpoints.values() if c.session_id == session_id]
            return [_copy(c) for c in sorted(found, key=lambda c: (c.created_at, c.id))]

    def delete_checkpoint(self, checkpoint_id: str) -> bool:
        with self._lock:
            return self._checkpoints.pop(checkpoint_id, None) is not None

    # -- state ----------------------------------------------------------------
    def _live(self, scope: str, key: str, now: datetime) -> StateEntry | None:
        entry = self._state.get((scope, key))
        if entry is None:
            return None
        if entry.expires_at is not None and entry.expires_at <= now:
            del self._state[(scope, key)]
            self._tokens.pop((scope, key), None)
            return None
        return entry

    def get_entry(self, scope: str, key: str) -> StateEntry | None:
        with self._lock:
            entry = self._live(scope, key, utcnow())
            return _copy(entry) if entry else None

    def set_entry(
        self,
        scope: str,
        key: str,
        value: JSON,
        *,
        expires_at: datetime | None = None,
        expected_version: int | None = None,
        write_token: str | None = None,
    ) -> StateEntry:
        token = write_token or new_write_token()
        with self._lock:
            now = utcnow()
            current = self._live(scope, key, now)
            if current is not None and self._tokens.get((scope, key)) == token:
                return _copy(current)  # this write landed already
            check_version(scope, key, current, expected_version)
            entry = StateEntry(
                scope, key, _copy(value), (current.version + 1) if current else 1, expires_at, now
            )
            self._state[(scope, key)] = entry
            self._tokens[(scope, key)] = token
            return _copy(entry)

    def delete_entry(self, scope: str, key: str, *, expected_version: int | None = None) -> bool:
        with self._lock:
            current = self._live(scope, key, utcnow())
            if expected_version is not None:
                check_version(scope, key, current, expected_version)
            self._tokens.pop((scope, key), None)
            return self._state.pop((scope, key), None) is not None

    def incr(
        self, scope: str, key: str, amount: int = 1, *, expires_at: datetime | None = None
    ) -> int:
        with self._lock:
            now = utcnow()
            current = self._live(scope, key, now)
            if current is None:
                self._tokens.pop((scope, key), None)
                self._state[(scope, key)] = StateEntry(scope, key, amount, 1, expires_at, now)
                return amount
            if not isinstance(current.value, int) or isinstance(current.value, bool):
                raise ValidationError(
                    f"state {scope}/{key} holds {type(current.value).__name__}, not an integer"
                )
            if not INT_MIN <= current.value + amount <= INT_MAX:
                raise incr_overflow(scope, key, current.value, amount)
            self._tokens.pop((scope, key), None)  # in-process: no lost reply to recognise
            current.value += amount
            current.version += 1
            current.updated_at = now
            return int(current.value)

    def list_entries(
        self,
        scope: str | None = None,
        prefix: str = "",
        *,
        limit: int | None = None,
        after: tuple[str, str] | None = None,
        scope_prefix: str = "",
    ) -> list[StateEntry]:
        if scope is not None and not scope.startswith(scope_prefix):
            return []
        with self._lock:
            now = utcnow()
            if scope is not None:
                return self._list_scope(scope, prefix, limit, after, now)
            keys = sorted(
                k
                for k in list(self._state)
                if (scope is None or k[0] == scope)
                and k[0].startswith(scope_prefix)
                and k[1].startswith(prefix)
                and (after is None or k > after)
                and self._live(k[0], k[1], now) is not None
            )
            if limit is not None:
                keys = keys[:limit]
            return [_copy(self._state[k]) for k in keys]

    def _list_scope(
        self,
        scope: str,
        prefix: str,
        limit: int | None,
        after: tuple[str, str] | None,
        now: datetime,
    ) -> list[StateEntry]:
        def live(key: str) -> StateEntry | None:
            entry = self._state[(scope, key)]
            if entry.expires_at is None or entry.expires_at > now:
                return _copy(entry)
            return None

        keys = self._state.keys_by_scope.get(scope, [])
        return scan_sorted_keys(keys, scope, prefix, after, limit, live)

    def delete_scope(self, scope: str) -> int:
        with self._lock:
            doomed = [k for k in self._state if k[0] == scope]
            for k in doomed:
                del self._state[k]
                self._tokens.pop(k, None)
            return len(doomed)

    def put_entries(self, entries: Iterable[StateEntry]) -> None:
        with self._lock:
            for entry in entries:
                self._state[(entry.scope, entry.key)] = _copy(entry)
                self._tokens.pop((entry.scope, entry.key), None)
