"""Scoped key/value state for the JSON-files store (the StateStore half).

Layout: ``state/<scope-name>/<key-name>.json``, one small file per key, each holding
the real scope and key next to the value. A write replaces one file atomically, so
its cost does not grow with the scope. Every write of a scope (set, compare-and-set,
incr, delete, clearing the scope) holds that scope's cross-process lock, which makes
compare-and-set and incr atomic across processes and lets ``delete_scope`` move the
whole directory away without racing a writer. Reads take no lock: a file is always
either the old or the new version.

Expired entries are invisible; their files are removed by the next write of the
key or scope. Entry file names are digests (``safe_name``), so a scope also keeps
``keys.log``: one line per key created (``+"key"``) or deleted (``-"key"``), appended
under the scope's lock before the file is created and after it is removed, so the log
names every key that has a file (and perhaps a few that lost theirs in a crash). Listing
one scope reads that one file, sorts the names, and reads only the entries it returns
(LangGraph's ``list(limit=10)`` reads ten files, not the thread's thousands); the log is
rewritten compactly when deletes make it twice its size. A scope written before the log
existed is logged by its first listing. Listing every scope reads every file.
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

import orjson

from ...codec import from_record, to_record
from ...errors import ValidationError
from ...model import JSON, StateEntry, utcnow
from ...validation import INT_MAX, INT_MIN, incr_overflow
from .._kit import check_version, scan_sorted_keys
from ..base import new_write_token
from .files import (
    TEMP_PREFIX,
    LockTable,
    Root,
    atomic_write,
    dumps,
    guarded,
    loads_line,
    new_token,
    safe_name,
)

if TYPE_CHECKING:
    from ...urls import StoreURL

log = logging.getLogger("praisondb.jsonfiles")
_WRITE_FIELD = "write_token"
"""The record field beside the entry's own that holds its write token."""
KEY_LOG = "keys.log"
"""A scope's log of created and deleted keys (see the module docstring)."""


class StateFiles:
    """Mixin: the store class provides the attributes declared here."""

    url: StoreURL
    _fs: Root
    _locks: LockTable
    _fsync: bool

    # -- paths and files ------------------------------------------------------------
    def _scope_dir(self, scope: str) -> str:
        return self._fs.dir("state", safe_name(scope))

    def _entry_path(self, scope: str, key: str) -> str:
        return self._fs.file("state", safe_name(scope), f"{safe_name(key)}.json")

    def _scope_lock_name(self, scope: str) -> str:
        return "state-" + safe_name(scope)

    @staticmethod
    def _read_record(path: str) -> tuple[StateEntry | None, str | None]:
        """The entry in ``path`` and the write token stored beside it (if any)."""
        try:
            with open(path, "rb") as handle:
                data = loads_line(handle.read())
        except (FileNotFoundError, NotADirectoryError):
            return None, None
        if data is None:
            return None, None
        try:
            return from_record(StateEntry, data), data.get(_WRITE_FIELD)
        except (AttributeError, KeyError, TypeError, ValueError):
            log.warning("ignoring a damaged state file %s", path)
            return None, None

    def _read_entry_file(self, path: str) -> StateEntry | None:
        return self._read_record(path)[0]

    def _read_live_token(
        self, scope: str, key: str, now: datetime
    ) -> tuple[StateEntry | None, str | None]:
        entry, token = self._read_record(self._entry_path(scope, key))
        if entry is None or entry.scope != scope or entry.key != key:
            return None, None
        if entry.expires_at is not None and entry.expires_at <= now:
            return None, None
        return entry, token

    def _read_live(self, scope: str, key: str, now: datetime) -> StateEntry | None:
        return self._read_live_token(scope, key, now)[0]

    def _write_entry(self, entry: StateEntry, token: str | None = None) -> None:
        """Write one entry's file; the caller holds the scope's lock."""
        directory = self._scope_dir(entry.scope)
        os.makedirs(directory, exist_ok=True)
        path = self._entry_path(entry.scope, entry.key)
        if not os.path.exists(path):
            self._log_state_keys(directory, b"+", [entry.key])
        record = to_record(entry)
        if token is not None:
            record[_WRITE_FIELD] = token
        data = dumps(record, f"state {entry.scope}/{entry.key}")
        atomic_write(path, data, fsync=self._fsync)

    # -- the key log (under the scope's lock) -------------------------------------------
    def _log_state_keys(self, directory: str, sign: bytes, keys: Iterable[str]) -> None:
        lines = b"".join(sign + orjson.dumps(key) + b"\n" for key in keys)
        log_path = os.path.join(directory, KEY_LOG)
        if sign == b"+" and not os.path.exists(log_path):
            self._rewrite_key_log(directory)  # a scope from before the log: start it whole
        with open(log_path, "ab") as handle:
            handle.write(lines)
            if self._fsync:
                os.fsync(handle.fileno())

    def _rewrite_key_log(self, directory: str) -> list[str]:
        """The log written anew from the scope's files; returns the keys, sorted."""
        keys = sorted({e.key for e in self._scope_entries(directory)})
        data = b"".join(b"+" + orjson.dumps(key) + b"\n" for key in keys)
        atomic_write(os.path.join(directory, KEY_LOG), data, fsync=self._fsync)
        return keys

    @staticmethod
    def _read_key_log(directory: str) -> tuple[list[str], int] | None:
        """(the keys the log names, sorted; how many lines it has), or None without a log."""
        try:
            with open(os.path.join(directory, KEY_LOG), "rb") as handle:
                lines = handle.read().split(b"\n")
        except (FileNotFoundError, NotADirectoryError):
            return None
        keys: set[str] = set()
        for line in lines:
            try:
                key = orjson.loads(line[1:])
            except orjson.JSONDecodeError:
                continue  # the end of the file, or a line cut short by a crash
            if line[:1] == b"+":
                keys.add(key)
            else:
                keys.discard(key)
        return sorted(keys), len(lines)

    def _scope_keys(self, scope: str) -> list[str]:
        """Every key of ``scope`` that may have a file, sorted."""
        directory = self._scope_dir(scope)
        found = self._read_key_log(directory)
        if found is not None:
            return found[0]
        if not os.path.isdir(directory):
            return []
        with self._locks(self._scope_lock_name(scope)):
            found = self._read_key_log(directory)
            return found[0] if found is not None else self._rewrite_key_log(directory)

    def _scope_entries(self, directory: str) -> list[StateEntry]:
        found: list[StateEntry] = []
        try:
            names = os.listdir(directory)
        except (FileNotFoundError, NotADirectoryError):
            return found
        for name in names:
            if name.startswith(TEMP_PREFIX) or not name.endswith(".json"):
                continue
            entry = self._read_entry_file(os.path.join(directory, name))
            if entry is not None:
                found.append(entry)
        return found

    # -- the StateStore protocol ------------------------------------------------------
    @guarded
    def get_entry(self, scope: str, key: str) -> StateEntry | None:
        return self._read_live(scope, key, utcnow())

    @guarded
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
        with self._locks(self._scope_lock_name(scope)):
            now = utcnow()
            current, stored_token = self._read_live_token(scope, key, now)
            if current is not None and stored_token == token:
                return current  # this write landed already
            check_version(scope, key, current, expected_version)
            entry = StateEntry(
                scope,
                key,
                copy.deepcopy(value),
                (current.version + 1) if current else 1,
                expires_at,
                now,
            )
            self._write_entry(entry, token)
            return copy.deepcopy(entry)

    @guarded
    def delete_entry(self, scope: str, key: str, *, expected_version: int | None = None) -> bool:
        with self._locks(self._scope_lock_name(scope)):
            current = self._read_live(scope, key, utcnow())
            if expected_version is not None:
                check_version(scope, key, current, expected_version)
            try:
                os.unlink(self._entry_path(scope, key))
            except FileNotFoundError:
                return current is not None
            directory = self._scope_dir(scope)
            self._log_state_keys(directory, b"-", [key])
            found = self._read_key_log(directory)
            if found is not None and found[1] > 2 * len(found[0]) + 100:
                self._rewrite_key_log(directory)  # mostly deletes by now: compact it
            return current is not None

    @guarded
    def incr(
        self, scope: str, key: str, amount: int = 1, *, expires_at: datetime | None = None
    ) -> int:
        with self._locks(self._scope_lock_name(scope)):
            now = utcnow()
            current = self._read_live(scope, key, now)
            if current is None:
                entry = StateEntry(scope, key, amount, 1, expires_at, now)
            else:
                if not isinstance(current.value, int) or isinstance(current.value, bool):
                    raise ValidationError(
                        f"state {scope}/{key} holds {type(current.value).__name__}, not an integer"
                    )
                if not INT_MIN <= current.value + amount <= INT_MAX:
                    raise incr_overflow(scope, key, current.value, amount)
                entry = StateEntry(
                    scope,
                    key,
                    current.value + amount,
                    current.version + 1,
                    current.expires_at,
                    now,
                )
            self._write_entry(entry)
            return int(entry.value)

    @guarded
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
        now = utcnow()
        if scope is not None:
            return self._list_scope(scope, prefix, limit, after, now)
        base = self._fs.dir("state")
        directories = [os.path.join(base, name) for name in sorted(os.listdir(base))]
        found = [
            entry
            for directory in directories
            for entry in self._scope_entries(directory)
            if entry.key.startswith(prefix)
            and entry.scope.startswith(scope_prefix)
            and (after is None or (entry.scope, entry.key) > after)
            and (entry.expires_at is None or entry.expires_at > now)
        ]
        found.sort(key=lambda e: (e.scope, e.key))
        return found if limit is None else found[:limit]

    def _list_scope(
        self,
        scope: str,
        prefix: str,
        limit: int | None,
        after: tuple[str, str] | None,
        now: datetime,
    ) -> list[StateEntry]:
        """One scope's live entries in key order: names from the key log, then only
        the files of the entries returned."""
        return scan_sorted_keys(
            self._scope_keys(scope), scope, prefix, after, limit,
            lambda key: self._read_live(scope, key, now),
        )  # fmt: skip

    @guarded
    def delete_scope(self, scope: str) -> int:
        """Counts the live entries removed; expired leftovers go too, uncounted."""
        with self._locks(self._scope_lock_name(scope)):
            directory = self._scope_dir(scope)
            now = utcnow()
            live = sum(
                1
                for e in self._scope_entries(directory)
                if e.scope == scope and (e.expires_at is None or e.expires_at > now)
            )
            tomb = self._fs.dir("trash", f"state-{new_token()}")
            try:
                os.rename(directory, tomb)
            except FileNotFoundError:
                return 0
        shutil.rmtree(tomb, ignore_errors=True)
        return live

    @guarded
    def put_entries(self, entries: Iterable[StateEntry]) -> None:
        by_scope: dict[str, list[StateEntry]] = {}
        for entry in entries:
            by_scope.setdefault(entry.scope, []).append(entry)
        for scope, items in by_scope.items():
            with self._locks(self._scope_lock_name(scope)):
                for entry in items:
                    self._write_entry(entry)
