"""Scoped key/value state on Redis: one hash per entry, native expiry, Lua compare-and-set.

Key: ``<prefix>st:<byte length of scope>:{<scope>}:<key>``; the length makes the split
between scope and key unambiguous whatever characters they hold, and the ``{scope}``
hash tag keeps a scope in one Redis Cluster slot (so clearing it is one multi-key
UNLINK per batch). Every script touches one entry and its scope's key index
``<prefix>sx:<byte length of scope>:{<scope>}``, a zset of the scope's key names read in
key order with ZRANGEBYLEX: listing one scope (with a prefix and a limit, as LangGraph's
``list(limit=10)`` does) reads a bounded range of names and those entries only, whatever
else the database holds. Stores written before the index existed are indexed once, by
the first listing (a SCAN), marked by ``<prefix>sxready``; run every process on this
version or later, since an older one does not add the names of keys it creates. Listing
every scope uses SCAN (never KEYS) with glob characters escaped; on a cluster
``RedisCluster.scan_iter`` scans every master.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import datetime
from typing import Any, TypeVar

import orjson

from ...errors import ValidationError
from ...model import JSON, StateEntry, utcnow
from ...validation import incr_overflow
from .._kit import prefix_upper_bound, version_conflict
from ..base import new_write_token
from .codec import (
    PRUNE_INDEX,
    PUT_ENTRY,
    dumps,
    expiry_args,
    from_us,
    glob_escape,
    hash_tag,
    parse_entry,
    to_us,
)
from .core import RedisCore

T = TypeVar("T")
_BATCH = 200


class RedisStateMixin(RedisCore):
    """The StateStore half of RedisStore (kept apart to keep modules small)."""

    _indexed = False
    """This store has seen ``<prefix>sxready``: every scope's index is complete."""

    def _state_key(self, scope: str, key: str) -> str:
        return f"{self.prefix}st:{len(scope.encode())}:{hash_tag(scope)}:{key}"

    def _state_keys(self, scope: str, key: str) -> list[str]:
        """The keys a state script touches: the entry and its scope's index (one slot)."""
        return [self._state_key(scope, key), self._state_index(scope)]

    def _state_index(self, scope: str) -> str:
        return f"{self.prefix}sx:{len(scope.encode())}:{hash_tag(scope)}"

    def _split_state_key(self, raw: bytes) -> tuple[str, str]:
        rest = raw[len(self.prefix.encode()) + 3 :]
        length, _, rest = rest.partition(b":")
        size = int(length)
        start = 3 if rest.startswith(b"{\x01}") else 1  # see hash_tag
        scope = rest[start : start + size]
        return scope.decode(), rest[start + size + (2 if start == 1 else 1) :].decode()

    def get_entry(self, scope: str, key: str) -> StateEntry | None:
        raw = self._call(
            "get state",
            lambda: self._client.hmget(self._state_key(scope, key), "v", "ver", "upd", "exp"),
        )
        return parse_entry(scope, key, raw, to_us(utcnow()))

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
        now = utcnow()
        exp_us, exp_ms = expiry_args(expires_at)
        expected = "" if expected_version is None else str(expected_version)
        token = write_token or new_write_token()
        args = [dumps(value), expected, str(to_us(now)), exp_us, exp_ms, token, key]
        version, actual, *stored = self._call(
            "set state", lambda: self._state_set(self._state_keys(scope, key), args)
        )
        if int(version) == -1:
            raise version_conflict(scope, key, int(actual), expected_version)
        if int(actual) == 1:  # this write landed already: the entry as stored
            landed = parse_entry(scope, key, stored, to_us(now))
            assert landed is not None  # the script found it live
            return landed
        return StateEntry(scope, key, value, int(version), expires_at, from_us(to_us(now)))

    def delete_entry(self, scope: str, key: str, *, expected_version: int | None = None) -> bool:
        expected = "" if expected_version is None else str(expected_version)
        sent = 0

        def delete() -> Any:
            nonlocal sent
            sent += 1
            retry = "1" if sent > 1 else ""
            args = [expected, str(to_us(utcnow())), retry, key]
            return self._state_delete(self._state_keys(scope, key), args)

        deleted, actual = self._call("delete state", delete)
        if int(deleted) == -1:
            raise version_conflict(scope, key, int(actual), expected_version)
        return bool(int(deleted))

    def incr(
        self, scope: str, key: str, amount: int = 1, *, expires_at: datetime | None = None
    ) -> int:
        exp_us, exp_ms = expiry_args(expires_at)
        args = [str(amount), str(to_us(utcnow())), exp_us, exp_ms, new_write_token(), key]
        ok, value = self._call(
            "incr state", lambda: self._state_incr(self._state_keys(scope, key), args)
        )
        if int(ok) == -2:
            raise incr_overflow(scope, key, int(value), amount)
        if int(ok) == -1:
            held = orjson.loads(value)
            raise ValidationError(
                f"state {scope}/{key} holds {type(held).__name__}, not an integer"
            )
        return int(value)

    def _scan_state(self, scope: str | None, prefix: str) -> list[bytes]:
        if scope is None:
            pattern = glob_escape(self.prefix + "st:") + "*"
        else:
            pattern = glob_escape(self._state_key(scope, prefix)) + "*"
        return list(self._client.scan_iter(match=pattern, count=1000))

    def list_entries(
        self,
        scope: str | None = None,
        prefix: str = "",
        *,
        limit: int | None = None,
        after: tuple[str, str] | None = None,
        scope_prefix: str = "",
    ) -> list[StateEntry]:
        if limit is not None and limit <= 0:
            return []
        if scope is not None and not scope.startswith(scope_prefix):
            return []
        if scope is not None:
            return self._call("list state", lambda: self._list_scope(scope, prefix, limit, after))

        def run() -> list[StateEntry]:
            names = [(self._split_state_key(raw), raw) for raw in self._scan_state(scope, prefix)]
            names = [
                (sk, raw)
                for sk, raw in names
                if sk[1].startswith(prefix)
                and sk[0].startswith(scope_prefix)
                and (after is None or sk > after)
            ]
            names.sort()
            now = to_us(utcnow())
            found: list[StateEntry] = []
            for start in range(0, len(names), _BATCH):
                chunk = names[start : start + _BATCH]
                pipe = self._client.pipeline(transaction=False)
                for _, raw in chunk:
                    pipe.hmget(raw, "v", "ver", "upd", "exp")
                for (sk, _), row in zip(chunk, pipe.execute(), strict=True):
                    entry = parse_entry(sk[0], sk[1], row, now)
                    if entry is not None:
                        found.append(entry)
                if limit is not None and len(found) >= limit:
                    break
            return found if limit is None else found[:limit]

        return self._call("list state", run)

    def _list_scope(
        self, scope: str, prefix: str, limit: int | None, after: tuple[str, str] | None
    ) -> list[StateEntry]:
        """One scope's live entries in key order: pages of names from its index, then
        those entries, until ``limit`` are found."""
        self._ensure_index()
        low = b"[" + _utf8(prefix) if prefix else b"-"
        if after is not None:
            if after[0] > scope:
                return []
            if after[0] == scope and after[1] >= prefix:
                low = b"(" + _utf8(after[1])
        upper = prefix_upper_bound(prefix) if prefix else None
        high = b"(" + _utf8(upper) if upper is not None else b"+"
        index = self._state_index(scope)
        found: list[StateEntry] = []
        while limit is None or len(found) < limit:
            size = _BATCH if limit is None else min(_BATCH, limit - len(found) + 1)
            names = self._client.zrangebylex(index, low, high, start=0, num=size)
            if not names:
                break
            keys = [name.decode() for name in names]
            pipe = self._client.pipeline(transaction=False)
            for key in keys:
                pipe.hmget(self._state_key(scope, key), "v", "ver", "upd", "exp")
            now = to_us(utcnow())
            gone: list[str] = []
            for key, row in zip(keys, pipe.execute(), strict=True):
                entry = parse_entry(scope, key, row, now)
                if entry is not None:
                    found.append(entry)
                elif row[0] is None:
                    gone.append(key)
            if gone:
                stale = [self._state_key(scope, key) for key in gone]
                self._client.eval(PRUNE_INDEX, 1 + len(stale), index, *stale, *gone)
            if len(names) < size:
                break
            low = b"(" + names[-1]
        return found if limit is None else found[:limit]

    def _ensure_index(self) -> None:
        """Index a store written before scope indexes existed, once (see the docstring)."""
        if self._indexed:
            return
        ready = self.prefix + "sxready"
        if not self._client.exists(ready):
            names = self._scan_state(None, "")
            for start in range(0, len(names), _BATCH):
                pipe = self._client.pipeline(transaction=False)
                for raw in names[start : start + _BATCH]:
                    scope, key = self._split_state_key(raw)
                    pipe.zadd(self._state_index(scope), {key: 0})
                pipe.execute()
            self._client.set(ready, "1")
        self._indexed = True

    def delete_scope(self, scope: str) -> int:
        def run() -> int:
            names = self._scan_state(scope, "")
            removed = 0
            for start in range(0, len(names), 500):
                removed += int(self._client.unlink(*names[start : start + 500]))
            self._client.unlink(self._state_index(scope))
            return removed

        return self._call("delete scope", run)

    def put_entries(self, entries: Iterable[StateEntry]) -> None:
        """Batches of one-entry scripts in a plain pipeline: each entry is written whole
        (a batch spans many scopes, so many slots, and needs no all-or-nothing)."""

        def write(batch: list[StateEntry]) -> None:
            pipe = self._client.pipeline(transaction=False)
            for e in batch:
                exp_us, exp_ms = expiry_args(e.expires_at)
                args = [dumps(e.value), e.version, to_us(e.updated_at), exp_us, exp_ms, e.key]
                keys = self._state_keys(e.scope, e.key)
                pipe.execute_command("EVAL", PUT_ENTRY, len(keys), *keys, *args)
            pipe.execute()

        batch: list[StateEntry] = []
        for entry in entries:
            batch.append(entry)
            if len(batch) == _BATCH:
                self._call("put state", functools.partial(write, batch))
                batch = []
        if batch:
            self._call("put state", functools.partial(write, batch))


def _utf8(text: str) -> bytes:
    return text.encode()
