"""MongoDB store (``mongodb://``, ``mongodb+srv://``): conversations and state, MongoDB 4.0+.

Collections: ``sessions``, ``messages`` (one document per message, so a session never
meets the 16 MB document limit), ``runs``, ``checkpoints``, ``spans``, ``state`` and
``praisondb_migrations`` (numbered index migrations, applied idempotently on first use).

An append is one transaction on a replica set or sharded cluster: ``$inc`` of
``last_seq`` on the session document (which serialises concurrent writers, so seq is
gap-free) plus one ``insert_many``; a crash or a stopped server leaves nothing partial.
A standalone server has no transactions: the same two steps run without one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal, TypeVar
from urllib.parse import parse_qsl, urlencode

import pymongo
import pymongo.errors
from pymongo import ASCENDING, DESCENDING, ReturnDocument

from ...errors import ConfigError, Conflict, NotFound
from ...gc_pause import no_gc_pauses
from ...model import Checkpoint, Message, Page, Run, SessionInfo, Span, utcnow
from ...options import (
    ABSENT,
    AUTO_MIGRATE,
    RETRY_ATTEMPTS,
    Option,
    OptionTable,
    as_float,
    as_text,
    positive,
)
from ...retry import Retry
from ...urls import StoreURL, redact_text
from .._kit import mongo_id_range
from ..base import UNSET, Capability, SessionQuery, decode_session_cursor, session_cursor
from .codec import (
    MESSAGE_FIELDS,
    checkpoint_doc,
    escape,
    escape_key,
    message_doc,
    message_key,
    parse_checkpoint,
    parse_message,
    parse_run,
    parse_session,
    parse_span,
    run_doc,
    session_doc,
    span_doc,
    to_us,
)
from .core import bulk_error, ready_lock
from .memories import MongoMemoriesMixin
from .state import MongoStateMixin

T = TypeVar("T")
OPTIONS = OptionTable(
    AUTO_MIGRATE,
    Option("database", as_text, ABSENT, doc="else the URL path, else praisondb"),
    Option("timeout", as_float, ABSENT, positive, "must be > 0", "seconds, retries included"),
    Option("connect_timeout", as_float, ABSENT, positive, "must be > 0", "seconds"),
    RETRY_ATTEMPTS,
    driver_query=True,
)
DEFAULT_DATABASE = "praisondb"
DEFAULT_TIMEOUT = 5.0
_SELECTION = "serverselectiontimeoutms"
_HEARTBEAT = 0.5  # pymongo.common.MIN_HEARTBEAT_INTERVAL: how often selection re-checks


class MongoStore(MongoMemoriesMixin, MongoStateMixin):
    """Options (keyword or URL query): ``database`` (else the URL path, else ``praisondb``),
    ``timeout`` (seconds, default 5, else the URL's ``serverSelectionTimeoutMS``: the
    longest an operation waits for a server, all ``retry_attempts`` (default 3) included;
    at least 0.5 s per attempt),
    ``connect_timeout``. Other URL query parameters go to pymongo.

    ``io="async"`` (the async face): the same code drives pymongo's ``AsyncMongoClient``
    through :class:`~praisondb.aio.awaiting.Awaiting`, in the async face's greenlets."""

    capabilities: frozenset[Capability] = frozenset(
        {Capability.PERSISTENT, Capability.MULTI_PROCESS}
    )
    # AsyncMongoClient is GA from pymongo 4.13; with an older pymongo the async face
    # runs this store on worker threads instead.
    async_io: ClassVar[str] = "driver" if pymongo.version_tuple >= (4, 13) else "thread"

    def __init__(
        self, url: StoreURL, *, io: Literal["sync", "async"] = "sync", **options: Any
    ) -> None:
        self.url = url
        _check_io(url, io)
        merged = OPTIONS.read(url, options)
        base, _, query = url.secret.partition("?")
        pairs = [
            (k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k not in OPTIONS.names
        ]
        budget, attempts, connect_timeout = _timeouts(url, merged, pairs)
        self._retry = Retry(attempts=attempts)
        per_attempt = _per_attempt(budget, self._retry)
        # pymongo's keyword arguments override the URL's: pass only what the URL leaves unset.
        given = {k.lower() for k, _ in pairs}
        driver: dict[str, Any] = {"serverSelectionTimeoutMS": max(1, int(per_attempt * 1000))}
        if "connecttimeoutms" not in given:
            driver["connectTimeoutMS"] = max(1, int(min(connect_timeout, budget) * 1000))
        if "sockettimeoutms" not in given:
            driver["socketTimeoutMS"] = int(max(budget, 30) * 1000)
        rest = [(k, v) for k, v in pairs if k.lower() != _SELECTION]
        target = base + ("?" + urlencode(rest) if rest else "")
        try:
            self._client: Any = _client(url, io, target, driver)
            default = self._client.get_default_database(default=DEFAULT_DATABASE)
        except (pymongo.errors.ConfigurationError, pymongo.errors.InvalidURI, ValueError) as exc:
            raise ConfigError(
                f"bad MongoDB URL {url.redacted}: {redact_text(str(exc), url.secret)}"
            ) from None
        self._db: Any = self._client[merged.get("database") or default.name]
        self._ready_lock = ready_lock(io)
        self._ready = False
        self._transactions = False

    # -- sessions -------------------------------------------------------------
    def _purge_children(self, session_id: str, session: Any = None) -> None:
        """Remove what a deleted (or never-finished) session left behind."""
        self._db.messages.delete_many({"sid": session_id}, session=session)
        self._db.runs.delete_many({"sid": session_id}, session=session)
        self._db.checkpoints.delete_many({"sid": session_id}, session=session)
        self._db.spans.delete_many({"session_id": session_id}, session=session)

    def create_session(self, info: SessionInfo) -> SessionInfo:
        doc = session_doc(info)
        doc["message_count"] = doc["last_seq"] = 0

        def run() -> SessionInfo:
            if self._db.sessions.find_one({"_id": info.id}, {"_id": 1}) is not None:
                raise Conflict(f"session {info.id!r} already exists")
            self._db.messages.delete_many({"sid": info.id})  # leftovers of an interrupted delete
            try:
                self._db.sessions.insert_one(doc)
            except pymongo.errors.DuplicateKeyError:
                raise Conflict(f"session {info.id!r} already exists") from None
            return parse_session(doc)

        return self._call("create session", run)

    def put_session(self, info: SessionInfo) -> None:
        doc = session_doc(info)

        def body(session: Any) -> None:
            old = self._db.sessions.find_one({"_id": info.id}, session=session)
            if old is None:
                self._purge_children(info.id, session)
            top = self._db.messages.find_one(
                {"sid": info.id}, {"seq": 1}, sort=[("seq", DESCENDING)], session=session
            )
            doc["message_count"] = self._db.messages.count_documents(
                {"sid": info.id}, session=session
            )
            doc["last_seq"] = max(
                info.last_seq,
                int(old["last_seq"]) if old else 0,
                int(top["seq"]) if top else 0,
            )
            self._db.sessions.replace_one({"_id": info.id}, doc, upsert=True, session=session)

        self._atomic("put session", body)

    def get_session(self, session_id: str) -> SessionInfo:
        doc = self._call("get session", lambda: self._db.sessions.find_one({"_id": session_id}))
        if doc is None:
            raise NotFound(f"session {session_id!r} not found")
        return parse_session(doc)

    @staticmethod
    def _filter(query: SessionQuery) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for field in ("user_id", "agent", "parent_id"):
            if getattr(query, field) is not None:
                found[field] = getattr(query, field)
        updated: dict[str, int] = {}
        if query.updated_after is not None:
            updated["$gte"] = to_us(query.updated_after)
        if query.updated_before is not None:
            updated["$lt"] = to_us(query.updated_before)
        if updated:
            found["updated_at"] = updated
        ids = mongo_id_range(query.id_prefix, query.exclude_id_prefix)
        if ids is not None:  # ranges on _id (its index), not a regex to escape
            found["_id"] = ids
        return found

    def list_sessions(self, query: SessionQuery) -> Page[SessionInfo]:
        where = self._filter(query)
        if query.cursor:
            created, last_id = decode_session_cursor(query.cursor)
            c = to_us(created)
            where = {
                "$and": [
                    where,
                    {
                        "$or": [
                            {"created_at": {"$lt": c}},
                            {"created_at": c, "_id": {"$lt": last_id}},
                        ]
                    },
                ]
            }

        def run() -> list[dict[str, Any]]:
            return list(
                self._db.sessions.find(where)
                .sort([("created_at", DESCENDING), ("_id", DESCENDING)])
                .limit(query.limit + 1)
            )

        docs = self._call("list sessions", run)
        items = [parse_session(d) for d in docs[: query.limit]]
        more = len(docs) > query.limit
        return Page(items, session_cursor(items[-1]) if more and items else None)

    def count_sessions(self, query: SessionQuery) -> int:
        where = self._filter(query)
        return int(self._call("count sessions", lambda: self._db.sessions.count_documents(where)))

    def update_session(
        self,
        session_id: str,
        *,
        title: str | None = UNSET,
        metadata: dict[str, Any] | None = None,
        replace_metadata: bool = False,
    ) -> SessionInfo:
        changes: dict[str, Any] = {}
        if title is not UNSET:
            changes["title"] = title
        if replace_metadata:
            changes["metadata"] = escape(metadata or {})
        else:  # shallow merge server-side: escaped keys hold no '.', so the paths are exact
            for key, value in (metadata or {}).items():
                changes["metadata." + escape_key(key)] = escape(value)
        update: dict[str, Any] = {"$max": {"updated_at": to_us(utcnow())}}
        if changes:
            update["$set"] = changes
        doc = self._call(
            "update session",
            lambda: self._db.sessions.find_one_and_update(
                {"_id": session_id}, update, return_document=ReturnDocument.AFTER
            ),
        )
        if doc is None:
            raise NotFound(f"session {session_id!r} not found")
        return parse_session(doc)

    def delete_session(self, session_id: str) -> bool:
        """The session document goes first, so it vanishes at once; its children follow
        (create_session sweeps leftovers if this is interrupted)."""

        def run() -> bool:
            deleted = self._db.sessions.delete_one({"_id": session_id}).deleted_count
            self._purge_children(session_id)
            return bool(deleted)

        return self._call("delete session", run)

    # -- messages -------------------------------------------------------------
    def append_messages(self, session_id: str, messages: Sequence[Message]) -> list[Message]:
        """Three round trips (findAndModify, insert, commit): the floor for a gap-free seq
        that a killed client or a crashed server cannot leave half-written on 4.0, since the
        counters and the message are two documents in two collections. Designs with fewer
        (insert first on a client-cached seq, then bump the counters: 2 round trips) can
        fill a seq freed by another process's delete_messages or re-created session, and
        leave counters behind when killed between the two writes."""
        n = len(messages)

        def body(session: Any) -> int:
            doc = self._db.sessions.find_one_and_update(
                {"_id": session_id},
                {
                    "$inc": {"last_seq": n, "message_count": n},
                    "$max": {"updated_at": to_us(utcnow())},
                },
                projection={"last_seq": 1},
                return_document=ReturnDocument.AFTER,
                session=session,
            )
            if doc is None:
                raise NotFound(f"session {session_id!r} not found")
            first = int(doc["last_seq"]) - n + 1
            if n:
                docs = [message_doc(session_id, m, first + i) for i, m in enumerate(messages)]
                try:
                    self._db.messages.insert_many(docs, ordered=True, session=session)
                except pymongo.errors.BulkWriteError as exc:
                    if session is None:  # no transaction: undo the counter bump we can
                        self._rollback_standalone(session_id, docs, exc)
                    raise bulk_error(session_id, exc) from None
            return first

        first = self._atomic("append messages", body)
        for offset, message in enumerate(messages):
            message.seq = first + offset
            message.session_id = session_id
        return list(messages)

    def _rollback_standalone(self, session_id: str, docs: list[dict[str, Any]], exc: Any) -> None:
        inserted = int(exc.details.get("nInserted", 0))
        if inserted:
            self._db.messages.delete_many({"_id": {"$in": [d["_id"] for d in docs[:inserted]]}})
        self._db.sessions.update_one({"_id": session_id}, {"$inc": {"message_count": -len(docs)}})

    def put_messages(self, session_id: str, messages: Sequence[Message]) -> int:
        def body(session: Any) -> int:
            info = self._db.sessions.find_one({"_id": session_id}, {"last_seq": 1}, session=session)
            if info is None:
                raise NotFound(f"session {session_id!r} not found")
            wanted = {m.id: m for m in messages}
            stored = {
                d["id"]
                for d in self._db.messages.find(
                    {"sid": session_id, "id": {"$in": list(wanted)}}, {"id": 1}, session=session
                )
            }
            fresh = [m for m in messages if m.id not in stored]
            if not fresh:
                return 0
            holders = self._db.messages.find(
                {"sid": session_id, "seq": {"$in": [m.seq for m in fresh]}},
                {"id": 1, "seq": 1},
                session=session,
            )
            for holder in holders:
                raise Conflict(
                    f"seq {holder['seq']} of session {session_id!r} is held by {holder['id']!r}"
                )
            self._db.messages.insert_many(
                [message_doc(session_id, m, m.seq) for m in fresh], session=session
            )
            self._db.sessions.update_one(
                {"_id": session_id},
                {
                    "$max": {"last_seq": max(m.seq for m in fresh)},
                    "$inc": {"message_count": len(fresh)},
                },
                session=session,
            )
            return len(fresh)

        return self._atomic("put messages", body)

    def list_messages(
        self,
        session_id: str,
        *,
        after_seq: int | None = None,
        before_seq: int | None = None,
        last: int | None = None,
        limit: int | None = None,
    ) -> list[Message]:
        where: dict[str, Any] = {"sid": session_id}
        seq: dict[str, int] = {}
        if after_seq is not None:
            seq["$gt"] = after_seq
        if before_seq is not None:
            seq["$lt"] = before_seq
        if seq:
            where["seq"] = seq
        if (last is not None and last <= 0) or (limit is not None and limit <= 0):
            return []

        def run() -> list[dict[str, Any]]:
            if last is not None:
                docs = list(
                    self._db.messages.find(where, MESSAGE_FIELDS)
                    .sort("seq", DESCENDING)
                    .limit(last)
                )
                docs.reverse()
                return docs if limit is None else docs[:limit]
            cursor = self._db.messages.find(where, MESSAGE_FIELDS).sort("seq", ASCENDING)
            return list(cursor if limit is None else cursor.limit(limit))

        with no_gc_pauses():  # BSON documents decode inside the call
            return [parse_message(d) for d in self._call("list messages", run)]

    def get_messages(self, session_id: str, ids: Sequence[str]) -> list[Message]:
        keys = [message_key(session_id, message_id) for message_id in ids]

        def run() -> list[dict[str, Any]]:
            found = self._db.messages.find({"_id": {"$in": keys}}, MESSAGE_FIELDS)
            return list(found.sort("seq", ASCENDING))

        return [parse_message(doc) for doc in self._call("get messages", run)]

    def count_messages(self, session_id: str) -> int:
        return int(
            self._call(
                "count messages", lambda: self._db.messages.count_documents({"sid": session_id})
            )
        )

    def delete_messages(
        self, session_id: str, *, from_seq: int | None = None, to_seq: int | None = None
    ) -> int:
        where: dict[str, Any] = {"sid": session_id}
        seq: dict[str, int] = {}
        if from_seq is not None:
            seq["$gte"] = from_seq
        if to_seq is not None:
            seq["$lte"] = to_seq
        if seq:
            where["seq"] = seq

        def body(session: Any) -> int:
            removed = int(self._db.messages.delete_many(where, session=session).deleted_count)
            if removed:
                self._db.sessions.update_one(
                    {"_id": session_id},
                    {
                        "$inc": {"message_count": -removed},
                        "$max": {"updated_at": to_us(utcnow())},
                    },
                    session=session,
                )
            return removed

        return self._atomic("delete messages", body)

    def save_run(self, run: Run) -> None:
        self._upsert("runs", run_doc(run))

    def get_run(self, run_id: str) -> Run:
        return parse_run(self._get("runs", "run", run_id))

    def list_runs(self, session_id: str, *, limit: int | None = None) -> list[Run]:
        return [
            parse_run(d) for d in self._newest("runs", {"sid": session_id}, "started_at", limit)
        ]

    def _newest(
        self, collection: str, where: dict[str, Any], field: str, limit: int | None
    ) -> list[dict[str, Any]]:
        """Oldest first by (field, _id); ``limit`` keeps the newest N."""
        if limit is not None and limit <= 0:
            return []

        def run() -> list[dict[str, Any]]:
            if limit is None:
                return list(self._db[collection].find(where).sort([(field, 1), ("_id", 1)]))
            docs = list(
                self._db[collection].find(where).sort([(field, -1), ("_id", -1)]).limit(limit)
            )
            docs.reverse()
            return docs

        return self._call(f"list {collection}", run)

    def save_span(self, span: Span) -> None:
        self._upsert("spans", span_doc(span))

    def get_span(self, span_id: str) -> Span:
        return parse_span(self._get("spans", "span", span_id))

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
        where: dict[str, Any] = {}
        for field, value in (
            ("trace_id", trace_id),
            ("session_id", session_id),
            ("user_id", user_id),
        ):
            if value is not None:
                where[field] = value
        if roots_only:
            where["parent_id"] = None
        ids = mongo_id_range(id_prefix, exclude_id_prefix)
        if ids is not None:  # ranges on _id (its index)
            where["_id"] = ids
        return [parse_span(d) for d in self._newest("spans", where, "started_at", limit)]

    def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        self._upsert("checkpoints", checkpoint_doc(checkpoint))

    def get_checkpoint(self, checkpoint_id: str) -> Checkpoint:
        return parse_checkpoint(self._get("checkpoints", "checkpoint", checkpoint_id))

    def list_checkpoints(self, session_id: str) -> list[Checkpoint]:
        docs = self._newest("checkpoints", {"sid": session_id}, "created_at", None)
        return [parse_checkpoint(d) for d in docs]

    def delete_checkpoint(self, checkpoint_id: str) -> bool:
        return bool(
            self._call(
                "delete checkpoint",
                lambda: self._db.checkpoints.delete_one({"_id": checkpoint_id}).deleted_count,
            )
        )


# -- helpers -------------------------------------------------------------------------


def _client(url: StoreURL, io: str, target: str, driver: dict[str, Any]) -> Any:
    """The sync ``MongoClient``, or (``io="async"``) the ``AsyncMongoClient`` in its sync
    shape; neither connects before the first operation."""
    if io == "sync":
        return pymongo.MongoClient(target, connect=False, **driver)
    from ...aio.awaiting import Awaiting

    return Awaiting(pymongo.AsyncMongoClient(target, **driver))


def _check_io(url: StoreURL, io: str) -> None:
    if io not in ("sync", "async"):
        raise ConfigError(f"io must be 'sync' or 'async' for {url.redacted}, not {io!r}")
    if io == "async" and pymongo.version_tuple < (4, 13):
        raise ConfigError(
            f"the async face on MongoDB needs pymongo>=4.13 (AsyncMongoClient), found "
            f"{pymongo.__version__}: pip install -U 'praisondb[mongo]'"
        )


def _timeouts(
    url: StoreURL, merged: dict[str, Any], pairs: list[tuple[str, str]]
) -> tuple[float, int, float]:
    """(total wait for a server, attempts, connect timeout), all in seconds.

    ``timeout`` wins over the URL's ``serverSelectionTimeoutMS``; either is the budget
    of a whole operation, retries included (pymongo would otherwise wait it per try).
    """
    selection = next((v for k, v in pairs if k.lower() == _SELECTION), None)
    if "timeout" in merged:
        budget: float = merged["timeout"]
    elif selection is not None:
        try:
            budget = float(selection) / 1000
        except ValueError:
            raise ConfigError(
                f"bad option value for {url.redacted}: serverSelectionTimeoutMS={selection!r}"
            ) from None
    else:
        budget = DEFAULT_TIMEOUT
    if budget <= 0:
        raise ConfigError(f"serverSelectionTimeoutMS must be > 0 for {url.redacted}")
    attempts: int = merged["retry_attempts"]
    connect_timeout: float = merged.get("connect_timeout", budget)
    return budget, attempts, connect_timeout


def _per_attempt(budget: float, retry: Retry) -> float:
    """One attempt's ``serverSelectionTimeoutMS``, so that every attempt and the longest
    backoff between them fit in ``budget``.

    pymongo checks the timeout only when its topology changes or every 0.5 s (its
    minimum heartbeat), so a wait may overrun by up to that: it is asked for less. An
    attempt still takes up to 0.5 s: ``retry_attempts`` x 0.5 s is the floor.
    """
    pauses = sum(
        min(retry.max_delay, retry.base_delay * 2 ** (n - 1)) for n in range(1, retry.attempts)
    )
    each = max(budget - pauses, 0.0) / retry.attempts
    return float(max(each - _HEARTBEAT, 0.01))
