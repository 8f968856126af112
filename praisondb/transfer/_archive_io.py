"""export / import_: stores to archive files and back, checked line by line."""

from __future__ import annotations

import os
import time
from datetime import datetime
from typing import Any

from ..model import StateEntry, utcnow
from ..stores.base import StateStore
from ._endpoints import Endpoint, is_reserved_scope, open_endpoint
from ._memories import check_memories, iter_memories, memories_of, memory_scopes, write_memories
from ._plan import (
    DEFAULT_BATCH_SIZE,
    check_common,
    count_totals,
    counted,
    iter_sessions,
    make_selection,
    noting_users,
    shared_scopes,
    state_plan,
)
from ._reports import (
    OnConflict,
    ProgressCallback,
    StateMode,
    Tracker,
    TransferReport,
    VerifyReport,
)
from ._sources import ArchiveSession, StoreSession
from ._sync import SessionSyncer, SyncOptions, state_equal
from ._verify import CompareOptions, check_one, iter_entries, state_problem
from .archive import (
    ArchiveError,
    ArchiveReader,
    ArchiveScan,
    ArchiveWriter,
    MemoryBatch,
    SessionBlock,
)


def verify_archive(
    reader: ArchiveReader,
    tgt: Endpoint,
    batch_size: int,
    scan: ArchiveScan | None,
    progress: ProgressCallback | None,
    exclude: set[str] | None = None,
) -> VerifyReport:
    clock = time.perf_counter()
    report = VerifyReport(str(reader.path), tgt.label)
    tracker = Tracker(TransferReport("verify", report.source, tgt.label), "verify", progress)
    options = CompareOptions(batch_size)
    for item in reader.blocks(scan):
        if isinstance(item, SessionBlock):
            if exclude and item.info.id in exclude:
                continue
            check_one(ArchiveSession(item), tgt, options, None, report, tracker)
            continue
        if isinstance(item, MemoryBatch):
            check_memories(item, tgt.conversations, report)
            continue
        for entry in item:
            if is_reserved_scope(entry.scope):
                continue
            report.state_checked += 1
            theirs = tgt.state.get_entry(entry.scope, entry.key) if tgt.state else None
            text = state_problem(entry, theirs)
            if text:
                report.add_state_difference(text)
    report.elapsed = time.perf_counter() - clock
    return report


def export(
    source: Any,
    path: str | os.PathLike[str],
    *,
    sessions: list[str] | None = None,
    user_id: str | None = None,
    agent: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    state: StateMode = "auto",
    compress: bool | None = None,
    progress: ProgressCallback | None = None,
    source_options: dict[str, Any] | None = None,
) -> TransferReport:
    """Write the selection to an archive (gzip when ``path`` ends in ``.gz``).

    The file appears under its name only when complete (written as ``.partial`` first).
    """
    from .. import __version__

    check_common(batch_size, 1, "skip", state)
    selection = make_selection(sessions, user_id, agent, since, until)
    clock = time.perf_counter()
    with open_endpoint(source, source_options) as src:
        report = TransferReport("export", src.label, os.fspath(path))
        all_state, session_state = state_plan(state, selection)
        totals = count_totals(src.conversations, selection, since) if progress else (None, None)
        tracker = Tracker(
            report, "export", progress, sessions_total=totals[0], messages_total=totals[1]
        )
        writer = ArchiveWriter(
            path,
            compress=compress,
            header={
                "generator": f"praisondb {__version__}",
                "source": src.label,
                "filters": selection.as_dict(),
            },
        )
        try:
            users: set[str] = set()
            listed = iter_sessions(src.conversations, selection, since, None, report.notes)
            for info, _ in noting_users(counted(listed, report), users):
                session = StoreSession(src.conversations, info)
                runs, checkpoints, spans = session.runs(), session.checkpoints(), session.spans()
                writer.begin_session(info, runs, checkpoints, spans)
                for batch in session.messages(0, batch_size):
                    writer.write_messages(batch)
                    tracker.add(messages_copied=len(batch))
                writer.end_session()
                tracker.add(
                    runs_copied=len(runs),
                    checkpoints_copied=len(checkpoints),
                    spans_copied=len(spans),
                )
                tracker.session_done("created")
                if session_state and src.state is not None:
                    entries = [e for e in src.state.list_entries(f"session:{info.id}")]
                    writer.write_state(entries)
                    tracker.add(state_copied=len(entries))
            scopes: list[str | None] = [None] if all_state else []
            if session_state:
                scopes += shared_scopes(selection, users)
            for scope in scopes:
                _export_state(src.state, scope, batch_size, writer, tracker)
            memories = memories_of(src.conversations)
            if memories is not None:
                kept = memory_scopes(selection, users)
                for items in iter_memories(memories, kept, batch_size):
                    writer.write_memories(items)
                    tracker.add(memories_copied=len(items))
            writer.close()
        except BaseException:
            writer.abort()
            raise
        report.bytes = writer.bytes_written
        report.elapsed = time.perf_counter() - clock
    return report


def _export_state(
    state: StateStore | None,
    scope: str | None,
    batch_size: int,
    writer: ArchiveWriter,
    tracker: Tracker,
) -> None:
    if state is None:
        return
    pending: list[StateEntry] = []
    for entry in iter_entries(state, scope, batch_size):
        pending.append(entry)
        if len(pending) >= batch_size:
            writer.write_state(pending)
            tracker.add(state_copied=len(pending))
            pending = []
    writer.write_state(pending)
    tracker.add(state_copied=len(pending))


def import_(
    path: str | os.PathLike[str],
    target: Any,
    *,
    on_conflict: OnConflict = "skip",
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
    verify: bool = True,
    skip_damaged: bool = False,
    progress: ProgressCallback | None = None,
    target_options: dict[str, Any] | None = None,
) -> TransferReport:
    """Load an archive into ``target``; idempotent, so an interrupted import is re-run.

    The whole file is checked first: damage (with line numbers) raises ArchiveError and
    nothing is imported, unless ``skip_damaged`` imports the intact sessions only.
    """
    check_common(batch_size, 1, on_conflict, "auto")
    clock = time.perf_counter()
    reader = ArchiveReader(path)
    scan = reader.scan()
    with open_endpoint(target, target_options) as tgt:
        report = TransferReport("import", str(reader.path), tgt.label, dry_run=dry_run)
        report.damage = [str(d) for d in scan.damage]
        if scan.damage_count > len(scan.damage):
            report.damage.append(f"... and {scan.damage_count - len(scan.damage)} more")
        if not scan.ok and not skip_damaged:
            listed = "\n  ".join(report.damage[:10])
            raise ArchiveError(
                f"{reader.path}: the archive is damaged; nothing was imported "
                f"(pass skip_damaged=True to import the intact sessions):\n  {listed}"
            )
        if not scan.ok:
            report.notes.append(f"skipped {len(scan.damaged_sessions)} damaged session(s)")
        tracker = Tracker(
            report, "import", progress, sessions_total=scan.sessions, messages_total=scan.messages
        )
        syncer = SessionSyncer(
            tgt.conversations,
            tgt.state,
            None,
            SyncOptions(batch_size, on_conflict, dry_run),
            tracker,
        )
        conflicting: set[str] = set()
        now = utcnow()
        for item in reader.blocks(scan if not scan.ok else None):
            if isinstance(item, SessionBlock):
                report.sessions_seen += 1
                if syncer.sync(ArchiveSession(item)) == "conflicting":
                    conflicting.add(item.info.id)
                continue
            if isinstance(item, MemoryBatch):
                write_memories(tgt.conversations, item, tracker, dry_run=dry_run)
                continue
            changed = [
                entry
                for entry in item
                if not is_reserved_scope(entry.scope)
                and (entry.expires_at is None or entry.expires_at > now)
                and not _same_entry(tgt.state, entry)
            ]
            syncer.write_state(changed)
        report.bytes = scan.bytes
        report.elapsed = time.perf_counter() - clock
        if verify and not dry_run:
            report.verify = verify_archive(
                reader, tgt, batch_size, scan if not scan.ok else None, None, conflicting
            )
    return report


def _same_entry(state: StateStore | None, entry: StateEntry) -> bool:
    if state is None:
        return False
    current = state.get_entry(entry.scope, entry.key)
    return current is not None and state_equal(entry, current)
