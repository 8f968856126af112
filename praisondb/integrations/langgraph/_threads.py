"""The checkpointer's reads and writes, written once against a sync praisondb core.

``PraisonDBSaver``'s sync methods call these with a :class:`~praisondb.PraisonDB`; its
async methods with an :class:`~praisondb.aio.AsyncPraisonDB`'s core through
``run_sync``, so both faces run the same code in one trip through the bridge.

Write path (``put``): the changed channels' blobs, the checkpoint record and, once per run
and thread, its run index entry go out in one ``put_entries`` batch; then the namespace's head
entry moves to the new checkpoint by compare-and-set. The head is the commit: a put that
loses the compare-and-set deletes its record and raises :class:`~praisondb.Conflict`, so
two writers racing on one thread never silently fork it (LangGraph issue #8796).

Which puts are fenced (must find the head where they started):

* a run that loaded the latest checkpoint: ``get_tuple`` without a ``checkpoint_id``
  returns it with ``configurable["__praisondb_head"]`` set, and LangGraph carries the
  config of the checkpoint it loaded into every put of the run;
* a run that loaded nothing (a new thread) or whose config comes from elsewhere: its
  thread's first ``input`` checkpoint (step -1, no parent; a second one is a race) and
  every put whose parent is a checkpoint this saver itself made the head (the run's own
  earlier steps).

A run that loaded a checkpoint named by ``checkpoint_id`` (time travel, ``update_state``
on a past state) gets ``configurable["__praisondb_head"] = None``: it forks on purpose,
and its puts move the head unconditionally, as every LangGraph saver's do. So does a
direct ``put`` whose parent this saver never committed. Not fenced: the first checkpoint
of a new thread run with ``durability="exit"`` (no parent, not an ``input`` step).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_serializable_checkpoint_metadata,
    writes_sort_key,
)

from ... import clock
from ...errors import Conflict, NotFound, ValidationError
from ...model import Event, StateEntry, utcnow
from ...validation import check_json, check_key
from ..labels import LANGGRAPH, stamped
from . import _records as rec

if TYPE_CHECKING:
    from ...facade import PraisonDB

FENCE = "__praisondb_head"
"""Configurable key of a tuple ``get_tuple`` loaded as the latest: its puts are fenced."""
INLINE_LIMIT = 4096
"""Channel values whose serialised form is this short ride inline in every checkpoint
record (no blob read to load them), as SqliteSaver stores every value in every
checkpoint; every value is also a blob, written when it changes."""
TOUCH = 60.0
"""Seconds between ``updated_at`` moves of a thread in use (also at its first put in this
saver and at each new run): checkpoints are state entries, which leave the session record
alone, so without this retention cleanup could delete a thread being resumed, and an
incremental copy with a filter (which lists sessions by ``updated_at``) could miss it."""
_CACHE = 10_000
_ATTEMPTS = 5
PAGE = 200
_UNREAD: Any = object()
"""``tuple_of``'s pending writes not read yet."""


class Caches:
    """What one saver remembers between calls; a hint only, every write re-checks."""

    def __init__(self) -> None:
        self.lock = threading.Lock()  # never held across I/O (greenlets share the thread)
        self.heads: OrderedDict[tuple[str, str], tuple[str | None, int]] = OrderedDict()
        self.writes: OrderedDict[tuple[str, str], tuple[int, list[Any]]] = OrderedDict()
        self.committed: OrderedDict[tuple[str, str, str], bool] = OrderedDict()
        """Checkpoints this saver made a head: a put on one extends its own chain."""
        self.packed: OrderedDict[tuple[str, str, str], tuple[Any, list[str]]] = OrderedDict()
        """Each channel's latest (version, serialised value), so an unchanged small value
        rides inline without serialising it again (versions are unique per value)."""
        self.sessions: OrderedDict[str, float] = OrderedDict()
        """When this saver last moved each session's ``updated_at`` (``clock.time()``)."""
        self.runs: OrderedDict[tuple[str, str], bool] = OrderedDict()

    def remember(self, table: OrderedDict[Any, Any], key: Any, value: Any) -> None:
        with self.lock:
            table[key] = value
            table.move_to_end(key)
            while len(table) > _CACHE:
                table.popitem(last=False)

    def recall(self, table: OrderedDict[Any, Any], key: Any) -> Any:
        with self.lock:
            return table.get(key)

    def forget_scope(self, scope: str) -> None:
        with self.lock:
            tables: tuple[OrderedDict[Any, Any], ...] = (
                self.heads,
                self.writes,
                self.committed,
                self.packed,
            )
            for table in tables:
                for key in [k for k in table if k[0] == scope]:
                    del table[key]
            self.sessions.pop(scope.removeprefix("session:"), None)
            for key in [k for k in self.runs if f"session:{k[1]}" == scope]:
                del self.runs[key]


def target(config: RunnableConfig | None) -> tuple[str, str, str | None]:
    """(thread id, namespace, checkpoint id or None) of a config."""
    conf = (config or {}).get("configurable") or {}
    thread = conf.get("thread_id")
    if thread is None:
        raise ValidationError(
            "the config has no configurable thread_id: pass "
            "{'configurable': {'thread_id': '...'}} to the graph or the saver"
        )
    return str(thread), str(conf.get("checkpoint_ns") or ""), conf.get("checkpoint_id") or None


def config_of(thread: str, ns: str, checkpoint_id: str) -> RunnableConfig:
    return {
        "configurable": {"thread_id": thread, "checkpoint_ns": ns, "checkpoint_id": checkpoint_id}
    }


def entry(scope: str, key: str, value: Any) -> StateEntry:
    """A state entry for ``put_entries``, checked as ``db.state.set`` would check it."""
    return StateEntry(scope, check_key(key), check_json(value, f"state {key!r}"), 1, None, utcnow())


class Threads:
    """LangGraph threads as praisondb sessions (layout: ``_records``)."""

    def __init__(self, serde: Any, caches: Caches) -> None:
        self.serde = serde
        self.caches = caches

    # -- writes ---------------------------------------------------------------------------
    def put(
        self,
        db: PraisonDB,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        thread, ns, parent = target(config)
        scope, checkpoint_id = rec.scope_of(thread), str(checkpoint["id"])
        body: dict[str, Any] = dict(checkpoint)
        values: dict[str, Any] = body.pop("channel_values", None) or {}
        entries: list[StateEntry] = []
        inline: dict[str, list[str]] = {}
        for channel, version in new_versions.items():
            packed = None
            if channel in values:
                packed = rec.pack(self.serde, values[channel], f"channel {channel!r}")
                self.caches.remember(self.caches.packed, (scope, ns, channel), (version, packed))
            blob = {"channel": channel, "version": str(version), "value": packed}
            entries.append(entry(scope, rec.blob_key(ns, channel, version), blob))
        versions = checkpoint.get("channel_versions") or {}
        for channel, value in values.items():  # inline what is small, changed or not
            known = self.caches.recall(self.caches.packed, (scope, ns, channel))
            packed = known[1] if known is not None and known[0] == versions.get(channel) else None
            if packed is None and _small(value):
                packed = rec.pack(self.serde, value, f"channel {channel!r}")
            if packed is not None and len(packed[1]) <= INLINE_LIMIT:
                inline[channel] = packed
        meta: dict[str, Any] = dict(get_serializable_checkpoint_metadata(config, metadata))
        run_id = meta.get("run_id")
        record: dict[str, Any] = {
            "thread": thread,
            "ns": ns,
            "id": checkpoint_id,
            "parent": parent,
            "run_id": str(run_id) if run_id is not None else None,
            "ts": str(checkpoint.get("ts", "")),
            "checkpoint": rec.pack(self.serde, body, "the checkpoint"),
            "values": inline,
            **_metadata_fields(self.serde, meta),
        }
        record_key = rec.checkpoint_key(ns, checkpoint_id)
        entries.append(entry(scope, record_key, record))
        new_run = self._prepare_session(db, thread, record["run_id"], entries)
        db.state_store.put_entries(entries)
        if new_run is not None:
            self.caches.remember(self.caches.runs, new_run, True)
        head = {"thread": thread, "ns": ns, "id": checkpoint_id, "record": record}
        if self._fenced(config, scope, ns, parent, meta):
            stored = self._advance(db, scope, thread, ns, parent, head, record_key)
        else:
            stored = db.state.set(rec.head_key(ns), head, scope=scope)
        self.caches.remember(self.caches.heads, (scope, ns), (checkpoint_id, stored.version))
        self.caches.remember(self.caches.committed, (scope, ns, checkpoint_id), True)
        if db.events.enabled:  # a checkpoint is a thread's "append": analytics logs each one
            db.events.emit(_checkpoint_event(thread, ns, checkpoint_id, meta))
        return config_of(thread, ns, checkpoint_id)

    def _fenced(
        self, config: RunnableConfig, scope: str, ns: str, parent: str | None, meta: dict[str, Any]
    ) -> bool:
        conf = config.get("configurable") or {}
        if FENCE in conf:  # the run loaded a checkpoint: the latest (fenced) or a named one
            return bool(conf[FENCE])
        if parent is None:
            return meta.get("source") == "input" and meta.get("step") == -1
        return self.caches.recall(self.caches.committed, (scope, ns, parent)) is not None

    def _advance(
        self,
        db: PraisonDB,
        scope: str,
        thread: str,
        ns: str,
        parent: str | None,
        head: dict[str, Any],
        record_key: str,
    ) -> StateEntry:
        """Move the head from ``parent`` to the new checkpoint, or refuse with Conflict."""
        known = self.caches.recall(self.caches.heads, (scope, ns))
        for _ in range(_ATTEMPTS):
            if known is None:
                current = db.state.get_entry(rec.head_key(ns), scope=scope)
                known = (_head_id(current), current.version) if current else (None, 0)
            if known[0] != parent:
                db.state.delete(record_key, scope=scope)  # a refused fork leaves no record
                self.caches.remember(self.caches.heads, (scope, ns), known)
                raise Conflict(_moved(thread, ns, parent, known[0]))
            try:
                return db.state.set(rec.head_key(ns), head, scope=scope, expected_version=known[1])
            except Conflict:
                known = None  # the head changed since it was read: look again
        db.state.delete(record_key, scope=scope)
        raise Conflict(
            f"thread {thread!r} (namespace {ns!r}): its head kept changing under "
            f"{_ATTEMPTS} attempts to advance it; another writer is running on the thread, "
            "wait for it to finish, then re-run from the latest checkpoint"
        )

    def _prepare_session(
        self, db: PraisonDB, thread: str, run_id: str | None, entries: list[StateEntry]
    ) -> tuple[str, str] | None:
        """Make the thread's session exist, keep its ``updated_at`` fresh (see ``TOUCH``),
        and index the run for ``delete_for_runs``."""
        session = rec.session_id(thread)
        run = (run_id, session) if run_id is not None else None
        new_run = run is not None and self.caches.recall(self.caches.runs, run) is None
        touched = self.caches.recall(self.caches.sessions, session)
        if touched is None or new_run or clock.time() - touched >= TOUCH:
            self.touch(db, thread)
        if run is None or not new_run:
            return None
        value = {"run": run_id, "thread": thread}
        entries.append(entry(f"session:{session}", rec.run_key(str(run_id)), value))
        return run

    def touch(self, db: PraisonDB, thread: str) -> None:
        """Move the session's ``updated_at`` (the thread is in use), creating it if missing."""
        try:
            db.sessions.update(rec.session_id(thread))
        except NotFound:
            self.ensure_session(db, thread)
            return
        self.caches.remember(self.caches.sessions, rec.session_id(thread), clock.time())

    def ensure_session(self, db: PraisonDB, thread: str) -> str:
        """The thread's session (agent ``langgraph``, metadata ``framework: langgraph``)."""
        session = rec.session_id(thread)
        mapped = {"langgraph_thread_id": thread} if session != thread else None
        metadata = stamped(mapped, LANGGRAPH)
        db.sessions.get_or_create(session, agent="langgraph", metadata=metadata)
        self.caches.remember(self.caches.sessions, session, clock.time())
        return session

    def put_writes(
        self,
        db: PraisonDB,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Pending writes of one checkpoint live in one entry, merged by compare-and-set:
        a regular write (task, idx) is kept as first stored, special ones (errors,
        interrupts, resumes) are replaced, as LangGraph's own savers do."""
        thread, ns, checkpoint_id = target(config)
        if not writes:
            return
        if checkpoint_id is None:
            raise ValidationError(
                "put_writes needs the checkpoint's config: its configurable has no checkpoint_id"
            )
        scope, key = rec.scope_of(thread), rec.writes_key(ns, checkpoint_id)
        replace = all(channel in WRITES_IDX_MAP for channel, _ in writes)
        rows = [
            [
                str(task_id),
                WRITES_IDX_MAP.get(channel, idx),
                channel,
                rec.pack(self.serde, value, f"the write to channel {channel!r}"),
                task_path,
            ]
            for idx, (channel, value) in enumerate(writes)
        ]
        known: tuple[int, list[Any]] = self.caches.recall(self.caches.writes, (scope, key)) or (
            0,
            [],
        )
        for _ in range(_ATTEMPTS * 4):
            version, stored = known
            merged = _merge(stored, rows, replace)
            if merged is None:  # every write is stored already
                return
            value = {"thread": thread, "ns": ns, "id": checkpoint_id, "writes": merged}
            try:
                written = db.state.set(key, value, scope=scope, expected_version=version)
            except Conflict:
                current = db.state.get_entry(key, scope=scope)
                known = (current.version, list(current.value["writes"])) if current else (0, [])
                continue
            self.caches.remember(self.caches.writes, (scope, key), (written.version, merged))
            return
        raise Conflict(
            f"thread {thread!r}: the pending writes of checkpoint {checkpoint_id} kept "
            "changing under this write; retry it"
        )

    # -- reads ----------------------------------------------------------------------------
    def get_tuple(self, db: PraisonDB, config: RunnableConfig) -> CheckpointTuple | None:
        thread, ns, checkpoint_id = target(config)
        scope = rec.scope_of(thread)
        fence: str | None = None
        if checkpoint_id is not None:
            found = db.state.get_entry(rec.checkpoint_key(ns, checkpoint_id), scope=scope)
        else:
            found = None
            head = db.state.get_entry(rec.head_key(ns), scope=scope)
            if head is not None and (head_id := _head_id(head)) is not None:
                self.caches.remember(self.caches.heads, (scope, ns), (head_id, head.version))
                copy = head.value.get("record")  # the head carries its record: one read
                if isinstance(copy, dict) and copy.get("id") == head_id:
                    found = StateEntry(scope, rec.checkpoint_key(ns, head_id), copy)
                else:
                    found = db.state.get_entry(rec.checkpoint_key(ns, head_id), scope=scope)
                fence = head_id if found is not None else None
            if found is None:  # no head entry: the newest record is the latest
                page = db.state_store.list_entries(scope, rec.checkpoints_prefix(ns), limit=1)
                found = page[0] if page else None
        if found is None:
            return None
        result = self.tuple_of(db, scope, found.value)
        result.config["configurable"][FENCE] = fence
        return result

    def tuple_of(
        self, db: PraisonDB, scope: str, record: Any, writes: Any = _UNREAD
    ) -> CheckpointTuple:
        """The CheckpointTuple of a checkpoint record: blobs and pending writes read
        (``writes``: its pending writes' entry, or None, when the caller read it)."""
        ns, checkpoint_id = record["ns"], record["id"]
        body = rec.unpack(self.serde, record["checkpoint"], f"checkpoint {checkpoint_id}")
        inline = record.get("values") or {}
        values: dict[str, Any] = {}
        for channel, version in (body.get("channel_versions") or {}).items():
            if channel in inline:
                values[channel] = rec.unpack(self.serde, inline[channel], f"channel {channel!r}")
                continue
            blob = db.state.get_entry(rec.blob_key(ns, channel, version), scope=scope)
            packed = blob.value.get("value") if blob and isinstance(blob.value, dict) else None
            if packed is not None:
                self.caches.remember(self.caches.packed, (scope, ns, channel), (version, packed))
                values[channel] = rec.unpack(self.serde, packed, f"channel {channel!r}")
        body["channel_values"] = values
        if writes is _UNREAD:
            writes = db.state.get_entry(rec.writes_key(ns, checkpoint_id), scope=scope)
        rows = writes.value.get("writes", []) if writes and isinstance(writes.value, dict) else []
        rows = sorted(rows, key=lambda r: writes_sort_key(r[4], r[0], r[1]))
        pending = [(r[0], r[2], rec.unpack(self.serde, r[3], f"write {r[2]!r}")) for r in rows]
        parent = record.get("parent")
        return CheckpointTuple(
            config=config_of(record["thread"], ns, checkpoint_id),
            checkpoint=body,
            metadata=metadata_of(self.serde, record),  # type: ignore[arg-type]
            parent_config=config_of(record["thread"], ns, parent) if parent else None,
            pending_writes=pending,
        )

    def list(
        self,
        db: PraisonDB,
        config: RunnableConfig | None,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> list[CheckpointTuple]:
        """Newest first. One namespace of one thread pages through the store with
        ``before`` and ``limit`` pushed down; several are merged by checkpoint id."""
        conf = (config or {}).get("configurable") or {}
        before_id = ((before or {}).get("configurable") or {}).get("checkpoint_id")
        wanted_id = conf.get("checkpoint_id")
        if limit is not None and limit <= 0:
            return []
        if conf.get("thread_id") is not None and conf.get("checkpoint_ns") is not None:
            thread, ns, _ = target(config)
            scope = rec.scope_of(thread)
            after = rec.checkpoint_key(ns, before_id) if before_id else None
            size = min(PAGE, limit) if limit is not None and not filter and not wanted_id else PAGE
            records = self._records(db, scope, rec.checkpoints_prefix(ns), after, size)
            ordered: Iterator[tuple[str, Any]] = ((scope, r) for r in records)  # lazily
        else:
            if conf.get("thread_id") is not None:
                scopes = [rec.scope_of(str(conf["thread_id"]))]
            else:
                scopes = sorted({e.scope for e in _every_head(db)})
            merged = [
                (scope, r)
                for scope in scopes
                for r in self._records(db, scope, rec.CHECKPOINTS, None)
            ]
            merged.sort(key=lambda item: str(item[1]["id"]), reverse=True)
            ordered = iter(merged)
        chosen: list[tuple[str, Any]] = []
        for scope, record in ordered:
            if before_id is not None and str(record["id"]) >= str(before_id):
                continue
            if wanted_id is not None and record["id"] != wanted_id:
                continue
            if filter and not _matches(metadata_of(self.serde, record), filter):
                continue
            chosen.append((scope, record))
            if limit is not None and len(chosen) >= limit:
                break
        writes = self._writes_of(db, chosen) if len(chosen) > 1 else {}
        return [
            self.tuple_of(db, scope, r, writes.get((scope, r["ns"], r["id"]), _UNREAD))
            for scope, r in chosen
        ]

    def _writes_of(
        self, db: PraisonDB, chosen: Sequence[tuple[str, Any]]
    ) -> dict[tuple[str, str, str], StateEntry | None]:
        """The pending-writes entries of these records, one range read per namespace.

        Listed records are neighbours in their namespace, so their writes entries lie
        close together from the smallest key on: read that range, bounded by how many
        records there are (plus a few strays); a record past a full page is left out
        (``tuple_of`` then reads it alone)."""
        groups: dict[tuple[str, str], list[str]] = {}
        for scope, record in chosen:
            groups.setdefault((scope, record["ns"]), []).append(str(record["id"]))
        found: dict[tuple[str, str, str], StateEntry | None] = {}
        for (scope, ns), ids in groups.items():
            if len(ids) < 2:
                continue
            keys = {rec.writes_key(ns, checkpoint_id): checkpoint_id for checkpoint_id in ids}
            size = len(keys) + 8
            first = min(keys)  # read from just before it: ``after`` is exclusive
            page = db.state_store.list_entries(
                scope, rec.writes_prefix(ns), limit=size, after=(scope, first[:-1])
            )
            by_key = {e.key: e for e in page}
            covered = page[-1].key if len(page) >= size else None
            for key, checkpoint_id in keys.items():
                if covered is None or key <= covered:
                    found[(scope, ns, checkpoint_id)] = by_key.get(key)
        return found

    def _records(
        self, db: PraisonDB, scope: str, prefix: str, after: str | None, size: int = PAGE
    ) -> Iterator[Any]:
        """Checkpoint records under ``prefix``, newest first, a page at a time."""
        for found in pages(db, scope, prefix, after, size):
            if isinstance(found.value, dict) and "checkpoint" in found.value:
                yield found.value


def pages(
    db: PraisonDB, scope: str, prefix: str, after: str | None = None, size: int = PAGE
) -> Iterator[StateEntry]:
    """Every entry of ``scope`` under ``prefix`` after key ``after``, in key order."""
    while True:
        cursor = (scope, after) if after is not None else None
        page = db.state_store.list_entries(scope, prefix, limit=size, after=cursor)
        yield from page
        if len(page) < size:
            return
        after = page[-1].key


def _every_head(db: PraisonDB) -> Iterator[StateEntry]:
    """The head entries of every thread of every session (``list(None)``)."""
    after: tuple[str, str] | None = None
    while True:
        page = db.state_store.list_entries(None, rec.HEADS, limit=PAGE, after=after)
        yield from (e for e in page if e.scope.startswith("session:"))
        if len(page) < PAGE:
            return
        after = (page[-1].scope, page[-1].key)


def _checkpoint_event(thread: str, ns: str, checkpoint_id: str, meta: dict[str, Any]) -> Event:
    """``checkpoint``: which thread, step and source (``input``, ``loop``, ``update``...)."""
    step = meta.get("step")
    run_id = meta.get("run_id")
    return Event(
        "checkpoint",
        session_id=rec.session_id(thread),
        status=str(meta.get("source") or ""),
        attributes={
            "checkpoint_id": checkpoint_id,
            "checkpoint_ns": ns,
            "step": step if isinstance(step, int) else None,
            "run_id": str(run_id) if run_id is not None else None,
        },
    )


def metadata_of(serde: Any, record: Any) -> dict[str, Any]:
    if "metadata_typed" in record:
        meta: dict[str, Any] = rec.unpack(serde, record["metadata_typed"], "checkpoint metadata")
        return meta
    return dict(record.get("metadata") or {})


def _metadata_fields(serde: Any, meta: dict[str, Any]) -> dict[str, Any]:
    """Metadata as plain JSON when it is JSON data (readable in exports), else serde-typed."""
    try:
        return {"metadata": check_json(meta, "checkpoint metadata")}
    except ValidationError:
        return {"metadata": None, "metadata_typed": rec.pack(serde, meta, "checkpoint metadata")}


def _matches(meta: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return all(key in meta and meta[key] == value for key, value in wanted.items())


def _small(value: Any) -> bool:
    return (
        value is None
        or isinstance(value, (bool, int, float))
        or (isinstance(value, str) and len(value) <= INLINE_LIMIT)
    )


def _head_id(head: StateEntry | None) -> str | None:
    if head is None or not isinstance(head.value, dict):
        return None
    found = head.value.get("id")
    return str(found) if found is not None else None


def _merge(stored: list[Any], rows: list[list[Any]], replace: bool) -> list[Any] | None:
    """``stored`` with ``rows`` merged in, or None when nothing would change."""
    index = {(r[0], r[1]): i for i, r in enumerate(stored)}
    merged = list(stored)
    changed = False
    for row in rows:
        at = index.get((row[0], row[1]))
        if at is None:
            index[(row[0], row[1])] = len(merged)
            merged.append(row)
            changed = True
        elif replace and merged[at] != row:
            merged[at] = row
            changed = True
    return merged if changed else None


def _moved(thread: str, ns: str, parent: str | None, head: str | None) -> str:
    where = f"thread {thread!r}" + (f" (namespace {ns!r})" if ns else "")
    if head is None:
        return (
            f"{where} has no checkpoints any more (it was deleted or pruned) while this run "
            f"wrote after checkpoint {parent}; start the thread again"
        )
    started = f"checkpoint {parent}" if parent else "an empty thread"
    return (
        f"{where} moved on: its latest checkpoint is {head}, but this run started from "
        f"{started}, so another writer advanced the thread meanwhile. praisondb refused "
        "the write instead of forking the thread. Re-run from the latest checkpoint (invoke "
        "again with the thread's config), or fork on purpose by passing the checkpoint_id "
        "to start from"
    )
