"""Runs, spans and checkpoints for the JSON-files store.

Each kind is an append-only JSON Lines file per session (``runs.jsonl``,
``spans.jsonl``, ``checkpoints.jsonl`` in the session directory; spans without a
session go to ``spans/orphans.jsonl``). Saving appends the whole record and the
last record of an id wins; a delete appends a tombstone. So saves are O(1) and
survive a crash whole or not at all (a torn last line is ignored and cut before
the next append). ``index/<kind>/<name>.json`` maps an id to the session that holds
it, for lookups by id alone; it is written before the record, so it never points
at nothing for long, and a record that moves to another session leaves a
tombstone behind. Listing spans without a session reads every session's spans.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import orjson

from ...codec import from_record, to_record
from ...errors import NotFound
from ...model import Checkpoint, Run, Span
from .._kit import id_matches, newest
from .files import (
    LockTable,
    PathLock,
    Root,
    append_bytes,
    atomic_write,
    complete_lines,
    dumps,
    guarded,
    loads_line,
    read_json,
    repair_tail,
    safe_name,
    unlink_quietly,
)

if TYPE_CHECKING:
    from ...urls import StoreURL

_ORPHANS = "orphans"
RECORD_KINDS = ("runs", "spans", "checkpoints")


class RecordFiles:
    """Mixin: the store class provides the attributes declared here."""

    url: StoreURL
    _fs: Root
    _locks: LockTable
    _fsync: bool

    def _session_lock(self, name: str) -> PathLock:
        return self._locks("s-" + name)

    def _records_path(self, kind: str, session_id: str | None) -> str:
        if session_id is None:
            return self._fs.file("spans", f"{_ORPHANS}.jsonl")
        return self._fs.file("sessions", safe_name(session_id), f"{kind}.jsonl")

    def _records_lock(self, session_id: str | None) -> PathLock:
        if session_id is None:
            return self._locks(_ORPHANS)
        return self._session_lock(safe_name(session_id))

    def _index_path(self, kind: str, record_id: str) -> str:
        return self._fs.file("index", kind, f"{safe_name(record_id)}.json")

    def _read_pointer(self, kind: str, record_id: str) -> tuple[bool, str | None]:
        """(found, session id or None) of the log that holds ``record_id``."""
        try:
            data = read_json(self._index_path(kind, record_id))
        except FileNotFoundError:
            return False, None
        if data is None or data.get("id") != record_id:
            return False, None
        return True, data.get("session_id")

    @staticmethod
    def _load_records(path: str) -> dict[str, dict[str, Any]]:
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except (FileNotFoundError, NotADirectoryError):
            return {}
        records: dict[str, dict[str, Any]] = {}
        for line in complete_lines(data):
            record = loads_line(line)
            if record is None or not isinstance(record.get("id"), str):
                continue
            if record.get("deleted"):
                records.pop(record["id"], None)
            else:
                records[record["id"]] = record
        return records

    def _append_record(self, kind: str, session_id: str | None, line: bytes) -> None:
        path = self._records_path(kind, session_id)
        with self._records_lock(session_id):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            repair_tail(path, fsync=self._fsync)
            append_bytes(path, line + b"\n", fsync=self._fsync)

    @staticmethod
    def _tombstone(record_id: str) -> bytes:
        return orjson.dumps({"id": record_id, "deleted": True})

    def _save_record(
        self, kind: str, record_id: str, session_id: str | None, record: dict[str, Any]
    ) -> None:
        """Point the index at the record's log, then append; a move leaves a tombstone."""
        data = dumps(record, f"{kind} {record_id!r}")  # refuse bad input before any write
        if self._read_pointer(kind, record_id) != (True, session_id):
            with self._locks("index"):
                found, previous = self._read_pointer(kind, record_id)
                if found and previous != session_id:
                    old = self._records_path(kind, previous)
                    if os.path.exists(old):
                        self._append_record(kind, previous, self._tombstone(record_id))
                if not found or previous != session_id:
                    pointer = orjson.dumps({"id": record_id, "session_id": session_id})
                    atomic_write(self._index_path(kind, record_id), pointer, fsync=self._fsync)
        self._append_record(kind, session_id, data)

    def _get_record(self, kind: str, record_id: str) -> dict[str, Any] | None:
        found, session_id = self._read_pointer(kind, record_id)
        if not found:
            return None
        return self._load_records(self._records_path(kind, session_id)).get(record_id)

    @guarded
    def save_run(self, run: Run) -> None:
        self._save_record("runs", run.id, run.session_id, to_record(run))

    @guarded
    def get_run(self, run_id: str) -> Run:
        record = self._get_record("runs", run_id)
        if record is None:
            raise NotFound(f"run {run_id!r} not found")
        return from_record(Run, record)

    @guarded
    def list_runs(self, session_id: str, *, limit: int | None = None) -> list[Run]:
        records = self._load_records(self._records_path("runs", session_id)).values()
        runs = sorted((from_record(Run, r) for r in records), key=lambda r: (r.started_at, r.id))
        return newest(runs, limit)

    @guarded
    def save_span(self, span: Span) -> None:
        self._save_record("spans", span.id, span.session_id, to_record(span))

    @guarded
    def get_span(self, span_id: str) -> Span:
        record = self._get_record("spans", span_id)
        if record is None:
            raise NotFound(f"span {span_id!r} not found")
        return from_record(Span, record)

    @guarded
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
        if session_id is not None:
            paths = [self._records_path("spans", session_id)]
        else:  # no session to narrow by: every session's spans, and the orphans
            base = self._fs.dir("sessions")
            paths = [os.path.join(base, name, "spans.jsonl") for name in os.listdir(base)]
            paths.append(self._records_path("spans", None))
        spans = sorted(
            (
                s
                for path in paths
                for s in (from_record(Span, r) for r in self._load_records(path).values())
                if (trace_id is None or s.trace_id == trace_id)
                and (session_id is None or s.session_id == session_id)
                and (user_id is None or s.user_id == user_id)
                and (not roots_only or s.parent_id is None)
                and id_matches(s.id, id_prefix, exclude_id_prefix)
            ),
            key=lambda s: (s.started_at, s.id),
        )
        return newest(spans, limit)

    @guarded
    def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        self._save_record(
            "checkpoints", checkpoint.id, checkpoint.session_id, to_record(checkpoint)
        )

    @guarded
    def get_checkpoint(self, checkpoint_id: str) -> Checkpoint:
        record = self._get_record("checkpoints", checkpoint_id)
        if record is None:
            raise NotFound(f"checkpoint {checkpoint_id!r} not found")
        return from_record(Checkpoint, record)

    @guarded
    def list_checkpoints(self, session_id: str) -> list[Checkpoint]:
        records = self._load_records(self._records_path("checkpoints", session_id)).values()
        return sorted(
            (from_record(Checkpoint, r) for r in records), key=lambda c: (c.created_at, c.id)
        )

    @guarded
    def delete_checkpoint(self, checkpoint_id: str) -> bool:
        with self._locks("index"):
            found, session_id = self._read_pointer("checkpoints", checkpoint_id)
            if not found:
                return False
            path = self._records_path("checkpoints", session_id)
            exists = checkpoint_id in self._load_records(path)
            if exists:
                self._append_record("checkpoints", session_id, self._tombstone(checkpoint_id))
            unlink_quietly(self._index_path("checkpoints", checkpoint_id))
            return exists
