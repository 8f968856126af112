"""Scoped key/value state on MongoDB: one document per entry, optimistic compare-and-set.

A document ``{s: scope, k: key, v: value (keys escaped), ver, u: updated µs, e: expiry µs,
x: expiry as a BSON date}``; a TTL index on ``x`` removes expired entries natively,
and every read also filters on ``e`` because that cleanup runs only once a minute.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar

import pymongo
import pymongo.errors
from pymongo import ASCENDING, ReturnDocument

from ...errors import ValidationError
from ...model import JSON, StateEntry, utcnow
from ...validation import INT_MAX, INT_MIN, incr_overflow
from .._kit import prefix_upper_bound, version_conflict
from ..base import new_write_token
from .codec import escape, from_us, to_us, unescape
from .core import MongoCore

T = TypeVar("T")


class MongoStateMixin(MongoCore):
    """The StateStore half of MongoStore (kept apart to keep modules small)."""

    @staticmethod
    def _live(now: int) -> dict[str, Any]:
        return {"$or": [{"e": None}, {"e": {"$gt": now}}]}

    def get_entry(self, scope: str, key: str) -> StateEntry | None:
        now = to_us(utcnow())
        doc = self._call(
            "get state",
            lambda: self._db.state.find_one({"s": scope, "k": key, **self._live(now)}),
        )
        return None if doc is None else _parse_entry(doc)

    def _write_entry(
        self,
        scope: str,
        key: str,
        token: str,
        make: Callable[[dict[str, Any] | None, int], dict[str, Any]],
    ) -> tuple[dict[str, Any], bool]:
        """Optimistic read-compute-write: ``make(live_doc, now)`` returns the new document;
        the write only lands if the document did not change. Returns (document, landed
        before): a live document already holding ``token`` is this write, re-sent after a
        lost reply, and is returned unchanged."""

        def run() -> tuple[dict[str, Any], bool]:
            while True:
                now = to_us(utcnow())
                current = self._db.state.find_one({"s": scope, "k": key})
                live = (
                    current
                    if current and (current.get("e") is None or current["e"] > now)
                    else None
                )
                if live is not None and live.get("t") == token:
                    return live, True
                new = make(live, now)
                new.update({"s": scope, "k": key, "t": token})
                if current is None:
                    try:
                        self._db.state.insert_one(new)
                        return new, False
                    except pymongo.errors.DuplicateKeyError:
                        continue
                guard = {"_id": current["_id"], "ver": current["ver"], "u": current["u"]}
                if self._db.state.replace_one(guard, new).matched_count:
                    return new, False

        return self._call("write state", run)

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
        def make(live: dict[str, Any] | None, now: int) -> dict[str, Any]:
            version = int(live["ver"]) if live else 0
            if expected_version is not None and version != expected_version:
                raise version_conflict(scope, key, version, expected_version)
            return _entry_doc(value, version + 1, now, expires_at)

        token = write_token or new_write_token()
        doc, landed_before = self._write_entry(scope, key, token, make)
        if landed_before:
            return _parse_entry(doc)
        return StateEntry(scope, key, value, int(doc["ver"]), expires_at, from_us(doc["u"]))

    def delete_entry(self, scope: str, key: str, *, expected_version: int | None = None) -> bool:
        sent = 0

        def run() -> bool:
            nonlocal sent
            sent += 1
            while True:
                now = to_us(utcnow())
                current = self._db.state.find_one({"s": scope, "k": key})
                live = (
                    current
                    if current and (current.get("e") is None or current["e"] > now)
                    else None
                )
                if live is None and sent > 1 and (expected_version or 0) > 0:
                    return True  # a re-send: gone, as asked (see StateStore.delete_entry)
                version = int(live["ver"]) if live else 0
                if expected_version is not None and version != expected_version:
                    raise version_conflict(scope, key, version, expected_version)
                if current is None:
                    return False
                guard = {"_id": current["_id"], "ver": current["ver"], "u": current["u"]}
                if self._db.state.delete_one(guard).deleted_count:
                    return live is not None

        return self._call("delete state", run)

    def incr(
        self, scope: str, key: str, amount: int = 1, *, expires_at: datetime | None = None
    ) -> int:
        token = new_write_token()
        # only a sum that stays in signed 64 bits takes the one-step path
        room = {"$lte": INT_MAX - amount} if amount > 0 else {"$gte": INT_MIN - amount}

        def fast() -> dict[str, Any] | None:
            now = to_us(utcnow())
            # not our own token: a re-send whose first attempt landed goes the slow way,
            # which finds the token and adds nothing
            where = {"s": scope, "k": key, "v": {"$type": ["int", "long"], **room}}
            found: dict[str, Any] | None = self._db.state.find_one_and_update(
                {**where, "t": {"$ne": token}, **self._live(now)},
                {"$inc": {"v": amount, "ver": 1}, "$set": {"u": now, "t": token}},
                return_document=ReturnDocument.AFTER,
            )
            return found

        doc = self._call("incr state", fast)
        if doc is not None:
            return int(doc["v"])

        def make(live: dict[str, Any] | None, now: int) -> dict[str, Any]:
            if live is None:
                return _entry_doc(amount, 1, now, expires_at)
            value = unescape(live["v"])
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValidationError(
                    f"state {scope}/{key} holds {type(value).__name__}, not an integer"
                )
            if not INT_MIN <= value + amount <= INT_MAX:
                raise incr_overflow(scope, key, value, amount)
            # an integer that appeared between our two steps: add to it
            return {**live, "v": value + amount, "ver": int(live["ver"]) + 1, "u": now}

        written, _ = self._write_entry(scope, key, token, make)
        return int(written["v"])

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
        now = to_us(utcnow())
        where: dict[str, Any] = {**self._live(now)}
        if scope is not None:
            where["s"] = scope
        elif scope_prefix:  # a range on the (s, k) index, not a regex
            upper = prefix_upper_bound(scope_prefix)
            where["s"] = {"$gte": scope_prefix, **({} if upper is None else {"$lt": upper})}
        if prefix:
            where["k"] = {"$regex": "^" + re.escape(prefix)}
        if after is not None and scope is not None:  # within one scope: a plain key bound
            if after[0] > scope:
                return []
            if after[0] == scope:
                where["k"] = {**where.get("k", {}), "$gt": after[1]}
        elif after is not None:
            where = {
                "$and": [
                    where,
                    {"$or": [{"s": {"$gt": after[0]}}, {"s": after[0], "k": {"$gt": after[1]}}]},
                ]
            }

        def run() -> list[dict[str, Any]]:
            cursor = self._db.state.find(where).sort([("s", ASCENDING), ("k", ASCENDING)])
            return list(cursor if limit is None else cursor.limit(limit))

        return [_parse_entry(d) for d in self._call("list state", run)]

    def delete_scope(self, scope: str) -> int:
        return int(
            self._call(
                "delete scope", lambda: self._db.state.delete_many({"s": scope}).deleted_count
            )
        )

    def put_entries(self, entries: Iterable[StateEntry]) -> None:
        ops = [
            pymongo.ReplaceOne(
                {"s": e.scope, "k": e.key},
                {
                    "s": e.scope,
                    "k": e.key,
                    **_entry_doc(e.value, e.version, to_us(e.updated_at), e.expires_at),
                },
                upsert=True,
            )
            for e in entries
        ]
        if ops:
            self._call("put state", lambda: self._db.state.bulk_write(ops, ordered=True))


def _entry_doc(value: JSON, version: int, now: int, expires_at: datetime | None) -> dict[str, Any]:
    doc: dict[str, Any] = {"v": escape(value), "ver": version, "u": now, "e": None}
    if expires_at is not None:
        doc["e"] = to_us(expires_at)
        doc["x"] = expires_at  # a BSON date for the TTL index (ms is fine for cleanup)
    return doc


def _parse_entry(doc: dict[str, Any]) -> StateEntry:
    return StateEntry(
        doc["s"],
        doc["k"],
        unescape(doc["v"]),
        int(doc["ver"]),
        None if doc.get("e") is None else from_us(doc["e"]),
        from_us(doc["u"]),
    )
