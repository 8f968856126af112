"""copy / export / import_ / verify: plan -> stream batches -> idempotent upsert -> cursor -> verify."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, TypeVar

from ..model import SessionInfo, StateEntry, utcnow
from ..stores.base import (
    BulkSessionLoader,
    StateStore,
    WholeSessionLoader,
)
from ._archive_io import verify_archive
from ._bulk import BulkCopier, bulk_units
from ._endpoints import (
    Endpoint,
    cursor_scope,
    open_endpoint,
    refuse_self_copy,
    same_state_store,
)
from ._memories import compare_memories, copy_memories, memory_scopes
from ._plan import (
    DEFAULT_BATCH_SIZE,
    Position,
    Selection,
    as_int,
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
from ._sources import StoreSession
from ._sync import SessionSyncer, SyncOptions, state_equal
from ._verify import (
    CompareOptions,
    check_one,
    compare_all_state,
    iter_entries,
    merge_entries,
)
from .archive import ArchiveReader, iso

U = TypeVar("U")
log = logging.getLogger("praisondb.transfer")

INCREMENTAL_OVERLAP = timedelta(minutes=5)
"""An incremental run re-reads sessions updated this long before the previous run began,
so writers whose clocks run a little behind the copying host are not missed."""
CURSOR_KEY = "cursor"
CURSOR_INTERVAL = 1.0
"""Seconds between cursor saves; each save is one small state write."""


class CursorKeeper:
    """Saves the copy's position in the target as it goes (at most once a second).

    ``passed`` counts the sessions behind ``position`` (over every run of this copy);
    ``sessions_done`` adds those finished after it by this run's workers, so a resumed
    copy can say truly how far the interrupted one got, however many workers it had.
    """

    def __init__(
        self,
        state: StateStore | None,
        scope: str,
        base: dict[str, Any],
        *,
        passed: int = 0,
        finished: Callable[[], int] = lambda: 0,
    ) -> None:
        self.state = state
        self.scope = scope
        self.data = dict(base)
        self.base = passed
        self.passed = passed
        self.finished = finished
        self.data["passed"] = passed
        self.last_save = 0.0
        self.lock = threading.Lock()

    def on_batch(self, session_id: str, seq: int) -> None:
        with self.lock:
            self.data["session"], self.data["seq"] = session_id, seq
        self._maybe_save()

    def on_session(self, position: Position) -> None:
        with self.lock:
            self.passed += 1
            self.data["position"], self.data["passed"] = position, self.passed
        self._maybe_save()

    def _maybe_save(self) -> None:
        if time.monotonic() - self.last_save >= CURSOR_INTERVAL:
            self.save()

    def save(self, status: str | None = None) -> None:
        with self.lock:
            if status is not None:
                self.data["status"] = status
            if self.state is None:
                return
            self.data["sessions_done"] = self.base + self.finished()
            self.data["saved_at"] = iso(utcnow())
            self.state.set_entry(self.scope, CURSOR_KEY, dict(self.data))
            self.last_save = time.monotonic()

    def save_on_abort(self) -> None:
        """Interrupted (Ctrl-C, an error): keep the latest position for the re-run."""
        try:
            self.save()
        except Exception as exc:  # noqa: BLE001 - the original error is the one to report
            log.warning(
                "could not save the copy's position (%s); a re-run resumes from the last one saved",
                exc,
            )


def load_cursor(state: StateStore | None, scope: str) -> dict[str, Any] | None:
    if state is None:
        return None
    entry = state.get_entry(scope, CURSOR_KEY)
    return entry.value if entry is not None and isinstance(entry.value, dict) else None


def _run_units(
    units: Iterator[tuple[U, list[Position]]],
    work: Callable[[U], Any],
    workers: int,
    done: Callable[[Position], None],
) -> None:
    """Run ``work`` per unit; ``done`` sees positions in listing order (the watermark).

    At most ``2 * workers`` units are queued and ``workers`` run, each holding at most
    one batch of messages at a time.
    """
    if workers <= 1:
        for unit, positions in units:
            work(unit)
            for position in positions:
                done(position)
        return
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="praisondb-transfer")
    window: deque[tuple[Future[Any], list[Position]]] = deque()

    def finish_head() -> None:
        future, positions = window.popleft()
        future.result()
        for position in positions:
            done(position)

    try:
        for unit, positions in units:
            window.append((pool.submit(work, unit), positions))
            while len(window) >= 2 * workers or (window and window[0][0].done()):
                finish_head()
        while window:
            finish_head()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _single(
    items: Iterator[tuple[SessionInfo, Position]],
) -> Iterator[tuple[SessionInfo, list[Position]]]:
    for info, position in items:
        yield info, [position]


# -- copy ----------------------------------------------------------------------------------


def copy(
    source: Any,
    target: Any,
    *,
    sessions: list[str] | None = None,
    user_id: str | None = None,
    agent: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    workers: int = 1,
    on_conflict: OnConflict = "skip",
    dry_run: bool = False,
    verify: bool = True,
    progress: ProgressCallback | None = None,
    state: StateMode = "auto",
    full: bool = False,
    source_options: dict[str, Any] | None = None,
    target_options: dict[str, Any] | None = None,
) -> TransferReport:
    """Copy sessions (with branches, messages, runs, checkpoints, spans) and state.

    ``source``/``target`` are URLs, stores or :class:`~praisondb.PraisonDB` objects.
    Idempotent and resumable: the position is saved in the target's state under a
    reserved ``praisondb.transfer:<hash>`` scope; a re-run after a finished copy only
    looks at sessions updated since that copy began (``full=True`` re-checks all).
    ``on_conflict`` decides what happens when the target holds a session the source's
    data cannot extend: ``skip`` it (reported), ``overwrite`` it, or ``fail``.
    A target that can load whole sessions (``BulkSessionLoader``, e.g. the SQL stores,
    or ``WholeSessionLoader``, the HTTP store)
    gets the sessions it lacks about ``batch_size`` messages per transaction; use
    ``workers`` > 1 to overlap reading the source with the target's own work.
    """
    check_common(batch_size, workers, on_conflict, state)
    selection = make_selection(sessions, user_id, agent, since, until)
    started_clock = time.perf_counter()
    with open_endpoint(source, source_options) as src, open_endpoint(target, target_options) as tgt:
        refuse_self_copy(src, tgt)
        report = TransferReport(
            "copy", src.label, tgt.label, dry_run=dry_run, bytes=0 if dry_run else None
        )
        scope = cursor_scope(src, selection.as_dict())
        cursor = load_cursor(tgt.state, scope)
        started, lower, position = _resume_point(cursor, selection, full, report)
        passed = as_int(cursor.get("passed")) if cursor is not None and report.resumed else 0
        all_state, session_state = state_plan(state, selection)
        if (all_state or session_state) and same_state_store(src, tgt):
            all_state = session_state = False
            report.notes.append("source and target share one state store; state not copied")
        totals = count_totals(src.conversations, selection, lower) if progress else (None, None)
        tracker = Tracker(
            report, "copy", progress, sessions_total=totals[0], messages_total=totals[1]
        )
        keeper = CursorKeeper(
            None if dry_run else tgt.state,
            scope,
            {
                "version": 1,
                "source": src.label,
                "started_at": iso(started),
                "lower": iso(lower) if lower else None,
                "position": position,
                "workers": workers,
            },
            passed=passed,
            finished=lambda: tracker.sessions_done,
        )
        keeper.save("running")
        conflicting: set[str] = set()
        try:
            syncer = SessionSyncer(
                tgt.conversations,
                tgt.state,
                src.state,
                SyncOptions(batch_size, on_conflict, dry_run, session_state, count_bytes=dry_run),
                tracker,
                keeper.on_batch,
            )
            users: set[str] = set()
            items = noting_users(
                counted(
                    iter_sessions(src.conversations, selection, lower, position, report.notes),
                    report,
                ),
                users,
            )
            loader = tgt.conversations
            if isinstance(loader, (BulkSessionLoader, WholeSessionLoader)) and not dry_run:
                bulk = BulkCopier(
                    src.conversations, loader, syncer, tracker, batch_size, keeper.on_batch
                )

                def copy_unit(infos: list[SessionInfo]) -> None:
                    conflicting.update(bulk.copy_unit(infos))

                _run_units(bulk_units(items, batch_size), copy_unit, workers, keeper.on_session)
            else:

                def copy_one(info: SessionInfo) -> None:
                    if syncer.sync(StoreSession(src.conversations, info)) == "conflicting":
                        conflicting.add(info.id)

                _run_units(_single(items), copy_one, workers, keeper.on_session)
            if src.state is not None:
                scopes: list[str | None] = [None] if all_state else []
                if session_state:
                    if report.resumed:  # the sessions an interrupted run finished count too
                        listed = iter_sessions(src.conversations, selection, lower)
                        users.update(i.user_id for i, _ in listed if i.user_id is not None)
                    scopes += shared_scopes(selection, users)
                for one in scopes:
                    _copy_state(src.state, tgt.state, one, syncer, batch_size)
            if report.resumed and selection.filtered:  # users of sessions copied before
                listed = iter_sessions(src.conversations, selection, lower)
                users.update(i.user_id for i, _ in listed if i.user_id is not None)
            copy_memories(
                src.conversations,
                tgt.conversations,
                memory_scopes(selection, users),
                batch_size,
                tracker,
                dry_run=dry_run,
            )
        except BaseException:  # Ctrl-C or an error: the re-run resumes from here
            keeper.save_on_abort()
            raise
        keeper.save("complete")
        report.elapsed = time.perf_counter() - started_clock
        if verify and not dry_run:
            report.verify = _verify_stores(
                src,
                tgt,
                selection,
                lower,
                CompareOptions(batch_size, live=True, session_state=session_state),
                all_state,
                created_before=utcnow(),
                exclude=conflicting,
            )
    return report


def _resume_point(
    cursor: dict[str, Any] | None, selection: Selection, full: bool, report: TransferReport
) -> tuple[datetime, datetime | None, Position]:
    """(this run's start, lower bound on updated_at, listing position) from a saved cursor."""
    now = utcnow()
    if cursor is None or full:
        return now, selection.since, None
    try:
        previous_start = datetime.fromisoformat(cursor["started_at"])
        lower = datetime.fromisoformat(cursor["lower"]) if cursor.get("lower") else None
    except (KeyError, TypeError, ValueError):
        report.notes.append("ignored an unreadable transfer cursor in the target")
        return now, selection.since, None
    if cursor.get("status") == "running":
        report.resumed = True
        report.notes.append(resume_note(cursor))
        position = cursor.get("position")
        return previous_start, lower, position if isinstance(position, (str, int)) else None
    incremental = previous_start - INCREMENTAL_OVERLAP
    if selection.since is not None:
        incremental = max(incremental, selection.since)
    report.incremental_since = iso(incremental)
    report.notes.append(
        f"incremental: only sessions updated since {iso(incremental)} (pass full=True "
        "to re-check every session)"
    )
    return now, incremental, None


def resume_note(cursor: dict[str, Any]) -> str:
    """How far the interrupted copy got, in words; only what the cursor really knows."""
    done = as_int(cursor.get("sessions_done"))
    note = (
        f"resuming an interrupted copy: at least {done:,} session(s) were finished before it "
        "stopped; "
        "the rest are copied now, without duplicating a message"
    )
    session, seq = cursor.get("session"), cursor.get("seq")
    if as_int(cursor.get("workers")) <= 1 and isinstance(session, str) and isinstance(seq, int):
        # one worker writes one session at a time; several interleave, so none is named
        note += f" (last batch written: session {session!r} up to seq {seq:,})"
    return note


def _copy_state(
    source: StateStore,
    target: StateStore | None,
    scope: str | None,
    syncer: SessionSyncer,
    batch: int,
) -> None:
    """Entries of ``scope`` (every scope: None) the target lacks or holds differently."""
    theirs = iter_entries(target, scope, batch) if target is not None else iter([])
    pending: list[StateEntry] = []
    for ours, other in merge_entries(iter_entries(source, scope, batch), theirs):
        if ours is not None and (other is None or not state_equal(ours, other)):
            pending.append(ours)
            if len(pending) >= batch:
                syncer.write_state(pending)
                pending = []
    syncer.write_state(pending)


# -- verify ----------------------------------------------------------------------------------


def verify(
    source: Any,
    target: Any,
    *,
    sessions: list[str] | None = None,
    user_id: str | None = None,
    agent: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    state: StateMode = "auto",
    live: bool = False,
    progress: ProgressCallback | None = None,
    source_options: dict[str, Any] | None = None,
    target_options: dict[str, Any] | None = None,
) -> VerifyReport:
    """Compare every selected session (and state) of ``source`` with ``target``.

    ``source`` may also be an archive file, to check an import. ``live=True`` tolerates
    a source that received appends after the copy (compares up to the target's last seq).
    """
    check_common(batch_size, 1, "skip", state)
    selection = make_selection(sessions, user_id, agent, since, until)
    with open_endpoint(target, target_options) as tgt:
        if isinstance(source, (str, os.PathLike)) and _is_archive(source):
            return verify_archive(ArchiveReader(source), tgt, batch_size, None, progress)
        with open_endpoint(source, source_options) as src:
            all_state, session_state = state_plan(state, selection)
            return _verify_stores(
                src,
                tgt,
                selection,
                since,
                CompareOptions(batch_size, live=live, session_state=session_state),
                all_state,
                progress=progress,
            )


def _is_archive(path: str | os.PathLike[str]) -> bool:
    from .archive import is_archive_path

    return is_archive_path(os.fspath(path))


def _verify_stores(
    src: Endpoint,
    tgt: Endpoint,
    selection: Selection,
    lower: datetime | None,
    options: CompareOptions,
    all_state: bool,
    *,
    created_before: datetime | None = None,
    exclude: set[str] | None = None,
    progress: ProgressCallback | None = None,
) -> VerifyReport:
    clock = time.perf_counter()
    report = VerifyReport(src.label, tgt.label)
    shadow = TransferReport("verify", src.label, tgt.label)
    tracker = Tracker(shadow, "verify", progress)
    users: set[str] = set()
    listed = iter_sessions(src.conversations, selection, lower, None, report.notes)
    for info, _ in noting_users(listed, users):
        if exclude and info.id in exclude:
            continue
        if created_before is not None and info.created_at > created_before:
            continue
        check_one(StoreSession(src.conversations, info), tgt, options, src.state, report, tracker)
    scopes: list[str | None] = [None] if all_state else []
    if options.session_state:
        scopes += shared_scopes(selection, users)
    if scopes and src.state is not None and tgt.state is not None:
        if same_state_store(src, tgt):
            report.notes.append("source and target share one state store; state not compared")
        else:
            for scope in scopes:
                compare_all_state(src.state, tgt.state, scope, options.batch_size, report)
    compare_memories(
        src.conversations,
        tgt.conversations,
        memory_scopes(selection, users),
        options.batch_size,
        report,
    )
    report.elapsed = time.perf_counter() - clock
    return report
