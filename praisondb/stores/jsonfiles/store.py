"""The JSON-files store: one directory per session, plain JSON on disk, no server.

URL: ``json:///abs/dir``, ``json://relative/dir`` or a bare directory path. Options
(keyword or URL query): ``fsync`` (default true; false trades durability on power
loss for speed, a killed process still loses nothing), ``lock_timeout`` (seconds to
wait for another process's lock, default 30) and ``auto_migrate`` (ignored).

Layout under the root::

    praisondb-json.json            format marker
    sessions/<name>/session.json   the session + counters, replaced atomically
    sessions/<name>/messages-<log>.jsonl   append-only, one message per line
    sessions/<name>/{runs,spans,checkpoints}.jsonl   append-only, last record wins
    spans/orphans.jsonl            spans that belong to no session
    index/{runs,spans,checkpoints}/<name>.json   id -> session, for lookups by id
    memories/<name>/items.jsonl    long-term memories of one scope (see jsonfiles.memories)
    index/memories/<name>.json     memory id -> its scope's file
    state/<scope>/<key>.json       see jsonfiles_state
    locks/*.lock                   cross-process locks (kept: see LockTable)
    trash/                         deleted directories on their way out

``<name>`` is :func:`~.jsonfiles_io.safe_name` of the id (a digest; the real id is
kept inside the files), so no id can name a path outside the root, and every path
written is checked against the root as well.

Crash safety. An append writes all lines of the batch with one ``write`` to the
log, then replaces ``session.json`` (counters and ``log_size``, the committed
length of the log). Readers read only the committed part, so they never see half a
batch or a torn line. Lines of a batch but the last carry ``"more": 1``, so a batch
whose final line never reached the disk is recognisable. If a writer dies between
the two steps, the log is the truth: the next writer, or a reader that finds the
session lock free, counts the whole batches past ``log_size`` into
``message_count``/``last_seq`` and truncates whatever is incomplete. So messages
that reached the log survive the crash (at-least-once; a retry with the same
message id gets a Conflict), and the counters heal themselves.

Costs. An append reads and rewrites only ``session.json`` and appends to the log:
O(1) in the session's length. Duplicate message ids are checked against an
in-process id index that is loaded once per session (O(n) the first time) and then
follows the log incrementally. ``list_messages(last=N)`` reads the log backwards;
``after_seq`` bisects it. Listing sessions and listing spans without a session id
scan every session directory (O(sessions)); this backend is meant for small and
medium deployments, tests and hand-inspectable data.
"""

from __future__ import annotations

import copy
import itertools
import logging
import os
import shutil
from collections.abc import Iterator, Sequence
from typing import Any

import orjson

from ...errors import BackendUnavailable, ConfigError, Conflict, NotFound, PraisonDBError
from ...model import Message, Page, SessionInfo, utcnow
from ...options import AUTO_MIGRATE, Option, OptionTable, as_bool, as_seconds
from ...urls import StoreURL
from .._kit import page_sessions, select_sessions
from ..base import (
    UNSET,
    Capability,
    SessionQuery,
    decode_session_cursor,
    merge_metadata,
)
from .codec import (
    FORMAT_VERSION,
    SessionHead,
    head_from_json,
    head_to_json,
    is_message_record,
    message_from_json,
    message_to_json,
)
from .files import (
    LockTable,
    Root,
    append_bytes,
    atomic_write,
    complete_lines,
    dumps,
    file_size,
    fsync_dir,
    guarded,
    is_disk_full,
    loads_line,
    new_token,
    read_json,
    read_range,
    safe_name,
    storage_full,
    truncate,
    unlink_quietly,
)
from .log import IdCache, complete_batches, encode_batch, read_forward, read_ids, read_last
from .memories import MemoryFiles
from .records import RECORD_KINDS, RecordFiles
from .state import StateFiles

log = logging.getLogger("praisondb.jsonfiles")

MARKER = "praisondb-json.json"
_OPTIONS = OptionTable(
    AUTO_MIGRATE,
    Option("fsync", as_bool, True, doc="flush every write to disk"),
    Option("lock_timeout", as_seconds, 30.0, doc="seconds to wait for another process's lock"),
)
_ID_CACHE_SESSIONS = 256


class JsonFileStore(RecordFiles, StateFiles, MemoryFiles):
    capabilities: frozenset[Capability] = frozenset(
        {Capability.PERSISTENT, Capability.MULTI_PROCESS}
    )

    def __init__(self, url: StoreURL, **options: Any) -> None:
        self.url = url
        settings = _OPTIONS.read(url, options)
        self._fsync: bool = settings["fsync"]
        self._lock_timeout: float = settings["lock_timeout"]
        if not url.path:
            raise ConfigError(f"{url.redacted} names no directory; use json:///abs/dir")
        self._root = os.path.realpath(os.path.expanduser(url.path))
        self._fs = Root(self._root)
        self._ids = IdCache(_ID_CACHE_SESSIONS)
        self._open_root()
        self._locks = LockTable(self._fs.dir("locks"), self._lock_timeout)
        self._init_memories()

    def _open_root(self) -> None:
        try:
            if os.path.exists(self._root) and not os.path.isdir(self._root):
                raise ConfigError(f"{self._root} exists and is not a directory ({self.url})")
            os.makedirs(self._root, exist_ok=True)
            self._check_marker()
            for sub in ("sessions", "spans", "state", "locks", "trash", "index"):
                os.makedirs(self._fs.dir(sub), exist_ok=True)
            for kind in RECORD_KINDS:
                os.makedirs(self._fs.dir("index", kind), exist_ok=True)
            trash = self._fs.dir("trash")
            for leftover in os.listdir(trash):  # deletes interrupted by a crash
                shutil.rmtree(os.path.join(trash, leftover), ignore_errors=True)
        except PraisonDBError:
            raise
        except PermissionError as exc:
            raise ConfigError(
                f"cannot use {exc.filename or self._root} as a JSON store: permission denied"
            ) from exc
        except OSError as exc:
            if is_disk_full(exc):
                raise storage_full(exc, self.url.redacted) from exc
            raise ConfigError(
                f"cannot use {exc.filename or self._root} as a JSON store: {exc.strerror or exc}"
            ) from exc

    def _check_marker(self) -> None:
        marker = self._fs.file(MARKER)
        try:
            data = read_json(marker)
        except FileNotFoundError:
            body = {"format": "praisondb-json", "version": FORMAT_VERSION}
            atomic_write(marker, orjson.dumps(body), fsync=self._fsync, sync_dir=True)
            return
        version = data.get("version") if data else None
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ConfigError(
                f"{marker} is format version {version!r}; this praisondb reads "
                f"version {FORMAT_VERSION} (upgrade praisondb)"
            )

    @guarded
    def ping(self) -> None:
        sessions = self._fs.dir("sessions")
        if not os.access(sessions, os.W_OK | os.X_OK):
            raise BackendUnavailable(
                f"{sessions} is missing or not writable", url=self.url.redacted
            )

    def schema_version(self) -> str | None:
        return None

    def close(self) -> None:
        self._ids.clear()

    # -- paths -----------------------------------------------------------------------
    def _session_dir(self, name: str) -> str:
        return self._fs.dir("sessions", name)

    def _head_path(self, name: str) -> str:
        return self._fs.file("sessions", name, "session.json")

    def _log_path(self, name: str, token: str) -> str:
        return self._fs.file("sessions", name, f"messages-{token}.jsonl")

    # -- session heads -------------------------------------------------------------------
    def _read_head(self, name: str, session_id: str | None) -> SessionHead | None:
        path = self._head_path(name)
        try:
            data = read_json(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            if data is None:
                raise ValueError("not a JSON object")
            head = head_from_json(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise PraisonDBError(f"{path} is damaged ({exc}); restore it from a backup") from None
        if session_id is not None and head.info.id != session_id:
            raise Conflict(f"{path} holds session {head.info.id!r}, not {session_id!r}")
        return head

    def _write_head(self, name: str, head: SessionHead, *, sync_dir: bool = False) -> None:
        data = dumps(head_to_json(head), f"session {head.info.id!r}")
        atomic_write(self._head_path(name), data, fsync=self._fsync, sync_dir=sync_dir)

    def _head(self, session_id: str) -> SessionHead | None:
        """The session's committed head, for readers; never waits for a writer.

        A log longer than ``log_size`` means an append in flight or a writer that
        died. If the session lock is free, nobody is writing, so the difference is
        healed now; if it is held, the live writer will commit, and the reader goes
        on with what is committed.
        """
        name = safe_name(session_id)
        head = self._read_head(name, session_id)
        if head is None or file_size(self._log_path(name, head.log)) == head.log_size:
            return head
        with self._session_lock(name).attempt() as taken:
            if taken:
                head = self._read_head(name, session_id)
                return None if head is None else self._heal(name, head)
        return head

    def _locked_head(self, name: str, session_id: str) -> SessionHead:
        """Under the session lock: the healed head, or NotFound."""
        head = self._read_head(name, session_id)
        if head is None:
            raise NotFound(f"session {session_id!r} not found")
        return self._heal(name, head)

    def _heal(self, name: str, head: SessionHead) -> SessionHead:
        """Bring the counters in line with the log after a crash (under the session lock)."""
        path = self._log_path(name, head.log)
        size = file_size(path)
        if size == head.log_size:
            return head
        info = head.info
        if size > head.log_size:
            start = head.log_size
        else:  # the log lost bytes the head counted (power loss): recount from scratch
            start, info.message_count = 0, 0
        tail = read_range(path, start, size) if size else b""
        good_end, records = complete_batches(tail)
        info.message_count += len(records)
        if records:
            info.last_seq = max(info.last_seq, max(r["seq"] for r in records))
            newest = max(message_from_json(info.id, r).created_at for r in records)
            info.updated_at = max(info.updated_at, newest)
        if start + good_end < size:
            log.warning(
                "%s: dropping %d bytes of an interrupted write", path, size - start - good_end
            )
            truncate(path, start + good_end, fsync=self._fsync)
        head.log_size = start + good_end
        self._write_head(name, head)
        return head

    # -- sessions ------------------------------------------------------------------------
    @guarded
    def create_session(self, info: SessionInfo) -> SessionInfo:
        name = safe_name(info.id)
        with self._session_lock(name):
            if self._read_head(name, info.id) is not None:
                raise Conflict(f"session {info.id!r} already exists")
            stored = copy.deepcopy(info)
            stored.message_count = stored.last_seq = 0
            os.makedirs(self._session_dir(name), exist_ok=True)
            self._write_head(name, SessionHead(stored, new_token()), sync_dir=True)
            if self._fsync:
                fsync_dir(self._fs.dir("sessions"))
            return copy.deepcopy(stored)

    @guarded
    def put_session(self, info: SessionInfo) -> None:
        name = safe_name(info.id)
        with self._session_lock(name):
            existing = self._read_head(name, info.id)
            stored = copy.deepcopy(info)
            if existing is None:
                os.makedirs(self._session_dir(name), exist_ok=True)
                head = SessionHead(stored, new_token())
                stored.message_count = 0
            else:
                existing = self._heal(name, existing)
                head = SessionHead(stored, existing.log, existing.log_size)
                stored.last_seq = max(stored.last_seq, existing.info.last_seq)
                stored.message_count = existing.info.message_count
            self._write_head(name, head, sync_dir=existing is None)

    @guarded
    def get_session(self, session_id: str) -> SessionInfo:
        head = self._head(session_id)
        if head is None:
            raise NotFound(f"session {session_id!r} not found")
        return head.info

    def _all_sessions(self) -> Iterator[SessionInfo]:
        for name in os.listdir(self._fs.dir("sessions")):
            try:
                head = self._read_head(name, None)
                if head is not None and file_size(self._log_path(name, head.log)) != head.log_size:
                    head = self._head(head.info.id)
            except (FileNotFoundError, NotADirectoryError, ConfigError):
                continue  # deleted while we listed, or not ours
            except PraisonDBError as exc:
                log.warning("skipping a session: %s", exc)
                continue
            if head is not None:
                yield head.info

    @guarded
    def list_sessions(self, query: SessionQuery) -> Page[SessionInfo]:
        if query.cursor:
            decode_session_cursor(query.cursor)  # a bad cursor fails before the scan
        return page_sessions(select_sessions(self._all_sessions(), query), query)

    @guarded
    def count_sessions(self, query: SessionQuery) -> int:
        return len(select_sessions(self._all_sessions(), query))

    @guarded
    def update_session(
        self,
        session_id: str,
        *,
        title: str | None = UNSET,
        metadata: dict[str, Any] | None = None,
        replace_metadata: bool = False,
    ) -> SessionInfo:
        name = safe_name(session_id)
        with self._session_lock(name):
            head = self._locked_head(name, session_id)
            info = head.info
            if title is not UNSET:
                info.title = title
            info.metadata = merge_metadata(info.metadata, copy.deepcopy(metadata), replace_metadata)
            info.updated_at = max(utcnow(), info.updated_at)
            self._write_head(name, head, sync_dir=True)
            return copy.deepcopy(info)

    @guarded
    def delete_session(self, session_id: str) -> bool:
        name = safe_name(session_id)
        with self._locks("index"), self._session_lock(name):
            if self._read_head(name, session_id) is None:
                return False
            directory = self._session_dir(name)
            for kind in RECORD_KINDS:
                for record_id in self._load_records(os.path.join(directory, f"{kind}.jsonl")):
                    if self._read_pointer(kind, record_id) == (True, session_id):
                        unlink_quietly(self._index_path(kind, record_id))
            tomb = self._fs.dir("trash", f"{name}-{new_token()}")
            os.rename(directory, tomb)
            if self._fsync:
                fsync_dir(self._fs.dir("sessions"))
            self._ids.drop(name)
        shutil.rmtree(tomb, ignore_errors=True)
        return True

    # -- messages ------------------------------------------------------------------------
    def _known_ids(self, name: str, head: SessionHead) -> set[str]:
        path = self._log_path(name, head.log)
        return self._ids.get(
            name, head.log, head.log_size, lambda start: read_ids(path, start, head.log_size)
        )

    @guarded
    def append_messages(self, session_id: str, messages: Sequence[Message]) -> list[Message]:
        name = safe_name(session_id)
        with self._session_lock(name):
            head = self._locked_head(name, session_id)
            if not messages:
                return []
            known = self._known_ids(name, head)
            batch_ids: set[str] = set()
            for message in messages:
                if message.id in known or message.id in batch_ids:
                    raise Conflict(f"message {message.id!r} already exists")
                batch_ids.add(message.id)
            info = head.info
            records = []
            for offset, message in enumerate(messages, start=1):
                record = message_to_json(message)
                record["seq"] = info.last_seq + offset
                records.append(record)
            data = encode_batch(records)
            path = self._log_path(name, head.log)
            head.log_size = append_bytes(path, data, fsync=self._fsync)
            for message, record in zip(messages, records, strict=True):
                message.seq = record["seq"]
                message.session_id = session_id
            info.last_seq += len(messages)
            info.message_count += len(messages)
            info.updated_at = max(utcnow(), info.updated_at)
            self._write_head(name, head)
            self._ids.advance(name, head.log, head.log_size, batch_ids)
            return list(messages)

    @guarded
    def put_messages(self, session_id: str, messages: Sequence[Message]) -> int:
        name = safe_name(session_id)
        with self._session_lock(name):
            head = self._locked_head(name, session_id)
            known = self._known_ids(name, head)
            fresh: dict[str, Message] = {}
            for message in messages:
                if message.id not in known and message.id not in fresh:
                    fresh[message.id] = message
            if not fresh:
                return 0
            incoming = sorted(fresh.values(), key=lambda m: m.seq)
            seqs = [m.seq for m in incoming]
            for previous, current in itertools.pairwise(incoming):
                if previous.seq == current.seq:
                    raise Conflict(
                        f"seq {current.seq} of session {session_id!r} is given to both "
                        f"{previous.id!r} and {current.id!r}"
                    )
            info = head.info
            records = [message_to_json(m) for m in incoming]
            if seqs[0] > info.last_seq:  # all beyond the end: a plain append keeps order
                data = encode_batch(records)
                head.log_size = append_bytes(
                    self._log_path(name, head.log), data, fsync=self._fsync
                )
                self._ids.advance(name, head.log, head.log_size, set(fresh))
            else:
                stored = self._read_log(name, head)
                holders = {r["seq"]: r["id"] for r in stored}
                for record in records:
                    holder = holders.get(record["seq"])
                    if holder is not None:
                        raise Conflict(
                            f"seq {record['seq']} of session {session_id!r} is held by {holder!r}"
                        )
                merged = sorted([*stored, *records], key=lambda r: r["seq"])
                self._rewrite_log(name, head, merged)
            info.last_seq = max(info.last_seq, seqs[-1])
            info.message_count += len(records)
            self._write_head(name, head)
            return len(records)

    def _read_log(self, name: str, head: SessionHead) -> list[dict[str, Any]]:
        """Every committed record of the log (under the session lock, after a heal)."""
        if head.log_size == 0:
            return []
        data = read_range(self._log_path(name, head.log), 0, head.log_size)
        records = []
        for line in complete_lines(data):
            record = loads_line(line)
            if record is not None and is_message_record(record):
                record.pop("more", None)
                records.append(record)
        return records

    def _rewrite_log(self, name: str, head: SessionHead, records: list[dict[str, Any]]) -> None:
        """Write a new log under a new name; the caller's head write switches to it."""
        old = self._log_path(name, head.log)
        token = new_token()
        data = b"".join(orjson.dumps(r) + b"\n" for r in records)
        atomic_write(self._log_path(name, token), data, fsync=self._fsync)
        head.log, head.log_size = token, len(data)
        self._write_head(name, head, sync_dir=True)
        self._ids.drop(name)
        unlink_quietly(old)
        directory = self._session_dir(name)
        for stray in os.listdir(directory):  # left by a rewrite that crashed
            if stray.startswith("messages-") and stray != f"messages-{token}.jsonl":
                unlink_quietly(os.path.join(directory, stray))

    @guarded
    def list_messages(
        self,
        session_id: str,
        *,
        after_seq: int | None = None,
        before_seq: int | None = None,
        last: int | None = None,
        limit: int | None = None,
    ) -> list[Message]:
        if (last is not None and last <= 0) or (limit is not None and limit <= 0):
            return []
        seen: set[str] = set()
        while True:
            head = self._head(session_id)
            if head is None or head.log_size == 0 or head.log in seen:
                return []
            seen.add(head.log)
            try:
                with open(self._log_path(safe_name(session_id), head.log), "rb") as handle:
                    if last is not None:
                        records = read_last(handle, head.log_size, last, after_seq, before_seq)
                    else:
                        records = read_forward(handle, head.log_size, after_seq, before_seq, limit)
            except FileNotFoundError:
                continue  # replaced by a rewrite since we read the head: look again
            if limit is not None:
                records = records[:limit]
            return [message_from_json(session_id, r) for r in records]

    @guarded
    def get_messages(self, session_id: str, ids: Sequence[str]) -> list[Message]:
        """A scan of the log: this runs only when an append met an existing id."""
        wanted = set(ids)
        return [m for m in self.list_messages(session_id) if m.id in wanted]

    def count_messages(self, session_id: str) -> int:
        head = self._head(session_id)
        return 0 if head is None else head.info.message_count

    @guarded
    def delete_messages(
        self, session_id: str, *, from_seq: int | None = None, to_seq: int | None = None
    ) -> int:
        name = safe_name(session_id)
        with self._session_lock(name):
            head = self._read_head(name, session_id)
            if head is None:
                return 0
            head = self._heal(name, head)
            stored = self._read_log(name, head)
            lo = -(2**63) if from_seq is None else from_seq
            hi = 2**63 if to_seq is None else to_seq
            keep = [r for r in stored if not lo <= r["seq"] <= hi]
            removed = len(stored) - len(keep)
            if removed:
                head.info.message_count = len(keep)
                head.info.updated_at = max(utcnow(), head.info.updated_at)
                self._rewrite_log(name, head, keep)
            return removed
