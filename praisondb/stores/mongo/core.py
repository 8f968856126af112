"""What every part of the MongoDB store stands on: the client, retries and error wording,
first-use setup (collections and index migrations), and transactions.

``MongoStore`` sets the attributes in its constructor; its state part derives from
:class:`MongoCore`, so both call the one real ``_call``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, TypeVar

import pymongo
import pymongo.errors
from pymongo import ASCENDING, DESCENDING

from ... import clock
from ...errors import (
    BackendUnavailable,
    ConfigError,
    Conflict,
    NotFound,
    ValidationError,
)
from ...model import utcnow
from ...retry import Retry, driver_text
from ...urls import StoreURL, redact_text

T = TypeVar("T")

COLLECTIONS = (
    "sessions",
    "messages",
    "runs",
    "checkpoints",
    "spans",
    "state",
    "memories",
    "memory_scopes",
)
EVICTION_ORDER = [("quality", ASCENDING), ("created_at", ASCENDING), ("_id", ASCENDING)]
"""Which memory of a full scope goes first (see MemoriesStore.add_memory)."""

_TOO_LARGE = {10334, 17419, 17420, 257, 2}  # BSONObjectTooLarge, TransactionTooLarge, ...

_CONTENTION_SECONDS = 120.0


_NAMESPACE_EXISTS = 48


class MongoCore:
    """The client and the database; no store operation of its own."""

    url: StoreURL
    _client: Any
    _db: Any
    _retry: Retry
    _ready_lock: AbstractContextManager[Any]
    _ready: bool
    _transactions: bool

    # -- plumbing -----------------------------------------------------------------
    def _call(self, action: str, fn: Callable[[], T]) -> T:
        """Run with retries on connection errors; map driver errors to praisondb errors."""

        def attempt() -> T:
            self._ensure_ready()
            return fn()

        try:
            return self._retry.call(
                attempt, transient=_transient, url=self.url.redacted, action=action
            )
        except BackendUnavailable as exc:
            text = str(exc)
            if redact_text(text, self.url.secret) != text:
                raise BackendUnavailable(
                    redact_text(text, self.url.secret), attempts=exc.attempts
                ) from None
            raise
        except (pymongo.errors.DocumentTooLarge, OverflowError) as exc:
            raise ValidationError(_too_large(action, exc)) from None
        except pymongo.errors.ConfigurationError as exc:  # e.g. a server too old for pymongo
            raise ConfigError(_misconfigured(action, self.url, exc)) from None
        except (pymongo.errors.DuplicateKeyError, pymongo.errors.BulkWriteError) as exc:
            error = bulk_error("", exc) if isinstance(exc, pymongo.errors.BulkWriteError) else None
            if error is None or isinstance(error, Conflict):
                raise Conflict(f"{action}: {driver_text(exc, self.url.secret)}") from None
            raise error from None
        except pymongo.errors.OperationFailure as exc:
            if exc.code in _TOO_LARGE or "too large" in str(exc).lower():
                raise ValidationError(_too_large(action, exc)) from None
            if exc.code in (18, 13):  # AuthenticationFailed, Unauthorized
                raise ConfigError(
                    f"MongoDB refused {self.url.redacted}: {driver_text(exc, self.url.secret)}"
                ) from None
            raise BackendUnavailable(
                f"{action} failed: {driver_text(exc, self.url.secret)}",
                url=self.url.redacted,
            ) from None

    def _ensure_ready(self) -> None:
        """Create collections (4.0 cannot create them inside a transaction) and indexes."""
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            hello = self._client.admin.command("isMaster")
            self._transactions = bool(hello.get("setName") or hello.get("msg") == "isdbgrid")
            existing = set(self._db.list_collection_names())
            for name in (*COLLECTIONS, "praisondb_migrations"):
                if name not in existing:
                    _create_collection(self._db, name)
            applied = {d["_id"] for d in self._db.praisondb_migrations.find({}, {"_id": 1})}
            for number, name, migrate in MIGRATIONS:
                if number not in applied:
                    migrate(self._db)
                    # Two processes upserting one new _id at once: MongoDB 4.0 lets one
                    # fail with a duplicate key instead of retrying; the record is there.
                    with contextlib.suppress(pymongo.errors.DuplicateKeyError):
                        self._db.praisondb_migrations.update_one(
                            {"_id": number},
                            {"$setOnInsert": {"name": name, "applied_at": utcnow()}},
                            upsert=True,
                        )
            self._ready = True

    def _atomic(self, action: str, body: Callable[[Any], T]) -> T:
        """Run ``body(session)`` in a transaction, retrying write conflicts (not outages).

        Whether the server has transactions is known only once ``_call`` has run
        ``_ensure_ready``, so the choice is made inside the retried callable: decided
        before it, the first write of a fresh object ran without a transaction."""

        def run() -> T:
            if not self._transactions:
                return body(None)
            deadline = time.monotonic() + _CONTENTION_SECONDS
            delay = 0.001
            while True:
                with self._client.start_session() as session:
                    try:
                        session.start_transaction()
                        result = body(session)
                        _commit(session)
                        return result
                    except pymongo.errors.PyMongoError as exc:
                        if session.in_transaction:
                            _abort(session)
                        contention = exc.has_error_label(
                            "TransientTransactionError"
                        ) and not isinstance(exc, pymongo.errors.ConnectionFailure)
                        if not contention or time.monotonic() > deadline:
                            raise
                    except BaseException:
                        if session.in_transaction:
                            _abort(session)
                        raise
                clock.pause(delay)
                delay = min(delay * 2, 0.05)

        return self._call(action, run)

    def ping(self) -> None:
        self._call("ping", lambda: self._client.admin.command("ping"))

    def schema_version(self) -> str | None:
        def run() -> str | None:
            top = self._db.praisondb_migrations.find_one(sort=[("_id", DESCENDING)])
            return None if top is None else str(top["_id"])

        return self._call("schema version", run)

    def close(self) -> None:
        self._client.close()

    # -- runs, spans, checkpoints ----------------------------------------------
    def _upsert(self, collection: str, doc: dict[str, Any]) -> None:
        self._call(
            f"save {collection}",
            lambda: self._db[collection].replace_one({"_id": doc["_id"]}, doc, upsert=True),
        )

    def _get(self, collection: str, what: str, item_id: str) -> dict[str, Any]:
        doc = self._call(f"get {what}", lambda: self._db[collection].find_one({"_id": item_id}))
        if doc is None:
            raise NotFound(f"{what} {item_id!r} not found")
        found: dict[str, Any] = doc
        return found


def ready_lock(io: str) -> AbstractContextManager[Any]:
    """The lock first-use setup holds across its I/O.

    Under the async face every call is a greenlet on the loop's one thread: a greenlet
    waiting on a ``threading.Lock`` another greenlet holds while it awaits the server
    would block that thread, and so the holder, for ever. There the lock is an
    ``asyncio.Lock`` whose waiters await it."""
    if io == "async":
        from ...aio.awaiting import Awaiting

        lock: AbstractContextManager[Any] = Awaiting(asyncio.Lock())
        return lock
    return threading.Lock()


def _migration_1(db: Any) -> None:
    db.sessions.create_index([("created_at", DESCENDING), ("_id", DESCENDING)])
    for field in ("user_id", "agent", "parent_id"):
        db.sessions.create_index(
            [(field, ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)]
        )
    db.sessions.create_index([("updated_at", ASCENDING)])
    db.messages.create_index([("sid", ASCENDING), ("seq", ASCENDING)], unique=True)
    db.runs.create_index([("sid", ASCENDING), ("started_at", ASCENDING), ("_id", ASCENDING)])
    db.checkpoints.create_index([("sid", ASCENDING), ("created_at", ASCENDING), ("_id", ASCENDING)])
    for field in ("trace_id", "session_id", "user_id"):
        db.spans.create_index([(field, ASCENDING), ("started_at", ASCENDING)])
    db.state.create_index([("s", ASCENDING), ("k", ASCENDING)], unique=True)
    db.state.create_index("x", expireAfterSeconds=0)  # native cleanup of expired entries


def _migration_2(db: Any) -> None:
    """Memories: see :mod:`.memories`."""
    db.memories.create_index(
        [("scope", ASCENDING), ("owner", ASCENDING), ("text", "text")],
        default_language="none",
        name="memories_text",
    )
    db.memories.create_index(
        [
            ("scope", ASCENDING),
            ("owner", ASCENDING),
            ("created_at", DESCENDING),
            ("_id", DESCENDING),
        ]
    )
    db.memories.create_index([("scope", ASCENDING), ("owner", ASCENDING), *EVICTION_ORDER])


MIGRATIONS: list[tuple[int, str, Callable[[Any], None]]] = [
    (1, "collections and indexes", _migration_1),
    (2, "memories: text, listing and eviction indexes", _migration_2),
]
"""Numbered like the SQL migrations: append, never edit, so shape changes are versioned."""


def _create_collection(db: Any, name: str) -> None:
    """Create a collection unless it exists; another process may win the race, which
    pymongo reports as CollectionInvalid or, from the server, NamespaceExists."""
    try:
        db.create_collection(name)
    except pymongo.errors.CollectionInvalid:
        pass
    except pymongo.errors.OperationFailure as exc:
        if exc.code != _NAMESPACE_EXISTS:
            raise


def _misconfigured(action: str, url: StoreURL, exc: Exception) -> str:
    text = f"{action} on {url.redacted}: {driver_text(exc, url.secret)}".rstrip(".")
    if "wire version" not in str(exc):
        return text
    # pymongo 4.14+ refuse MongoDB 4.0 and 4.2 at the handshake (4.13.x speak to them)
    return (
        f"{text}. This pymongo ({pymongo.__version__}) needs MongoDB "
        f"{pymongo.common.MIN_SUPPORTED_SERVER_VERSION} or newer: upgrade the server, or "
        "for MongoDB 4.0/4.2 install pymongo 4.13.x (pip install 'pymongo>=4.6,<4.14')"
    )


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, pymongo.errors.ConnectionFailure)


def _commit(session: Any) -> None:
    """Commit, retrying only an unknown commit result (the commit itself is idempotent).

    Interrupted mid-commit (a task cancelled on the async face), the commit may or may
    not have reached the server, and one that did not leaves the transaction open,
    holding the session document, so every writer of that session meets write conflicts
    until the server reaps it (60 s by default). pymongo has no abort after a commit
    but can retry one: the commit is sent again before the interruption goes on up, so
    the batch is whole and nothing stays open."""
    for tries in range(3):
        try:
            session.commit_transaction()
            return
        except pymongo.errors.PyMongoError as exc:
            if not exc.has_error_label("UnknownTransactionCommitResult") or tries == 2:
                raise
        except BaseException:
            with contextlib.suppress(pymongo.errors.PyMongoError):
                session.commit_transaction()
            raise


def _abort(session: Any) -> None:
    with contextlib.suppress(pymongo.errors.PyMongoError):  # the server drops it on its own
        session.abort_transaction()


def bulk_error(session_id: str, exc: Any) -> Exception:
    errors = exc.details.get("writeErrors") or [{}]
    if errors[0].get("code") == 11000:
        return Conflict(f"a message id of this batch already exists in session {session_id!r}")
    if errors[0].get("code") in _TOO_LARGE:
        return ValidationError(_too_large("append", errors[0].get("errmsg", "")))
    return exc if isinstance(exc, Exception) else RuntimeError(str(exc))


def _too_large(action: str, exc: object) -> str:
    return (
        f"{action}: the data is over MongoDB's 16 MB limit for one document (or, on 4.0, "
        f"for one transaction); store big payloads elsewhere and keep a reference ({exc})"
    )[:500]
