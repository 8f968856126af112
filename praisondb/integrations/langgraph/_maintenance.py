"""Whole-thread operations: delete, delete runs, copy, prune (one sync core, both faces)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ...errors import ValidationError
from ...model import StateEntry, utcnow
from . import _records as rec
from ._threads import PAGE, Threads, metadata_of, pages

if TYPE_CHECKING:
    from ...facade import PraisonDB

STRATEGIES = ("keep_latest", "delete")


def delete_thread(threads: Threads, db: PraisonDB, thread_id: str) -> None:
    """A thread is a praisondb session: deleting the thread deletes the session (its
    checkpoints, writes and anything else stored in it) in a few round trips."""
    session = rec.session_id(str(thread_id))
    db.sessions.delete(session)
    threads.caches.forget_scope(f"session:{session}")


def delete_for_runs(threads: Threads, db: PraisonDB, run_ids: Sequence[str]) -> None:
    """Delete the checkpoints (and their pending writes) that these runs wrote, on every
    thread whose run index names one of them; a namespace whose head goes moves it to its
    newest remaining checkpoint."""
    runs = {str(r) for r in run_ids}
    index = [found for run in sorted(runs) for found in _run_entries(db, run)]
    for scope in sorted({found.scope for found in index}):
        newest: dict[str, Any] = {}  # ns -> the newest checkpoint record that stays
        doomed: dict[str, set[str]] = {}
        for found in pages(db, scope, rec.CHECKPOINTS):
            record = found.value
            if not isinstance(record, dict) or "checkpoint" not in record:
                continue
            ns = str(record["ns"])
            if record.get("run_id") in runs:
                db.state.delete(found.key, scope=scope)
                db.state.delete(rec.writes_key(ns, str(record["id"])), scope=scope)
                doomed.setdefault(ns, set()).add(str(record["id"]))
            else:
                newest.setdefault(ns, record)  # pages are newest first per namespace
        for ns, gone in doomed.items():
            _repoint_head(db, scope, ns, gone, newest.get(ns))
        threads.caches.forget_scope(scope)
    for found in index:
        db.state.delete(found.key, scope=found.scope)


def _run_entries(db: PraisonDB, run_id: str) -> list[StateEntry]:
    """The run index entries of ``run_id``: one per thread it wrote, in that thread's scope
    (a key-prefix read across scopes; exact keys only, so run ``ab`` never matches ``abc``)."""
    key = rec.run_key(run_id)
    found: list[StateEntry] = []
    after: tuple[str, str] | None = None
    while True:
        page = db.state_store.list_entries(None, key, limit=PAGE, after=after)
        found += [e for e in page if e.key == key and e.scope.startswith("session:")]
        if len(page) < PAGE:
            return found
        after = (page[-1].scope, page[-1].key)


def _repoint_head(
    db: PraisonDB, scope: str, ns: str, gone: set[str], newest: dict[str, Any] | None
) -> None:
    head = db.state.get_entry(rec.head_key(ns), scope=scope)
    if head is None or not isinstance(head.value, dict) or head.value.get("id") not in gone:
        return
    if newest is None:
        db.state.delete(rec.head_key(ns), scope=scope, expected_version=head.version)
        return
    value = {"thread": newest["thread"], "ns": ns, "id": newest["id"]}
    db.state.set(rec.head_key(ns), value, scope=scope, expected_version=head.version)


def copy_thread(threads: Threads, db: PraisonDB, source: str, target_thread: str) -> None:
    """Every checkpoint, blob, pending write, head and run index entry of ``source`` into
    ``target``."""
    source_scope = rec.scope_of(str(source))
    target_thread = str(target_thread)
    scope = rec.scope_of(target_thread)
    ensured = False
    batch: list[StateEntry] = []
    for found in pages(db, source_scope, rec.PREFIX):
        if not ensured:
            threads.ensure_session(db, target_thread)
            ensured = True
        value = found.value
        if isinstance(value, dict) and "thread" in value:
            value = {**value, "thread": target_thread}
            if isinstance(value.get("record"), dict):  # a head's copy of its record
                value["record"] = {**value["record"], "thread": target_thread}
        batch.append(StateEntry(scope, found.key, value, found.version, None, utcnow()))
        if len(batch) >= PAGE:
            db.state_store.put_entries(batch)
            batch = []
    if batch:
        db.state_store.put_entries(batch)
    threads.caches.forget_scope(scope)


def prune(threads: Threads, db: PraisonDB, thread_ids: Sequence[str], strategy: str) -> None:
    """``keep_latest``: each namespace keeps its latest checkpoint (the one ``get_tuple``
    loads) with its pending writes and the blobs it references; a kept checkpoint whose
    parent goes is left with no parent. ``delete``: the threads go whole. Threads whose
    graphs use a DeltaChannel are refused (their latest value is rebuilt from older
    checkpoints), before anything is pruned."""
    if isinstance(thread_ids, str):
        raise ValidationError("thread_ids must be a list of thread ids, not one string")
    if strategy not in STRATEGIES:
        raise ValidationError(f"prune strategy {strategy!r} is not one of {list(STRATEGIES)}")
    if strategy == "delete":
        for thread in thread_ids:
            delete_thread(threads, db, thread)
        return
    plans = [_plan(threads, db, str(thread)) for thread in thread_ids]
    for scope, doomed, orphans in plans:
        for key in doomed:
            db.state.delete(key, scope=scope)
        for found in orphans:
            record = {**found.value, "parent": None}
            db.state.set(found.key, record, scope=scope)
            head = db.state.get_entry(rec.head_key(record["ns"]), scope=scope)
            if _carries(head, record["id"]):  # keep the head's copy of the record in step
                assert head is not None
                value = {**head.value, "record": record}
                db.state.set(head.key, value, scope=scope, expected_version=head.version)
        threads.caches.forget_scope(scope)


def _plan(threads: Threads, db: PraisonDB, thread: str) -> tuple[str, list[str], list[StateEntry]]:
    """(scope, keys to delete, kept records to unparent) for keep_latest on ``thread``."""
    scope = rec.scope_of(thread)
    found = list(pages(db, scope, rec.PREFIX))
    heads = {e.value["ns"]: e.value["id"] for e in found if _is(e, rec.HEADS)}
    records = [e for e in found if _is(e, rec.CHECKPOINTS)]
    kept: dict[str, StateEntry] = {}
    for record in records:  # newest first per namespace
        ns = record.value["ns"]
        if record.value.get("id") == heads.get(ns) or (ns not in kept and heads.get(ns) is None):
            kept[ns] = record
        if "counters_since_delta_snapshot" in metadata_of(threads.serde, record.value):
            raise ValidationError(
                f"thread {thread!r} uses a DeltaChannel, whose latest value is rebuilt "
                "from older checkpoints, so keep_latest would lose it; nothing was pruned. "
                "Prune it with the delete strategy, or leave it"
            )
    keep = {rec.head_key(ns) for ns in heads}
    for ns, record in kept.items():
        value: Any = record.value
        keep.add(record.key)
        keep.add(rec.writes_key(ns, str(value["id"])))
        body = rec.unpack(threads.serde, value["checkpoint"], f"checkpoint {value['id']}")
        for channel, version in (body.get("channel_versions") or {}).items():
            keep.add(rec.blob_key(ns, channel, version))
    doomed = [e.key for e in found if e.key not in keep]
    kept_ids = {str(r.value["id"]) for r in kept.values()}
    orphans = [
        r for r in kept.values() if r.value.get("parent") and str(r.value["parent"]) not in kept_ids
    ]
    return scope, doomed, orphans


def _is(found: StateEntry, prefix: str) -> bool:
    return found.key.startswith(prefix) and isinstance(found.value, dict) and "ns" in found.value


def _carries(head: StateEntry | None, checkpoint_id: str) -> bool:
    return (
        head is not None
        and isinstance(head.value, dict)
        and head.value.get("id") == checkpoint_id
        and "record" in head.value
    )
