"""The contracts every backend implements, and the small helpers they share.

Semantics here are the promises the conformance suite (``tests/conformance``) checks
on every backend. Inputs arrive validated (see :mod:`praisondb.validation`); stores
never need to re-check ids, roles or JSON-ness.
"""

from __future__ import annotations

import base64
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import orjson

from ..errors import ValidationError
from ..ids import new_id
from ..model import (
    JSON,
    Checkpoint,
    Event,
    MemoryItem,
    Message,
    Page,
    Run,
    SessionInfo,
    Span,
    StateEntry,
)
from ..urls import StoreURL


class Capability(enum.Enum):
    """What a backend can promise. A conformance test skips only for a missing capability."""

    PERSISTENT = "persistent"
    """Data survives the process (memory:// does not)."""
    MULTI_PROCESS = "multi_process"
    """Several processes may write the same store at once."""


@dataclass(frozen=True, slots=True)
class SessionQuery:
    """Filters for listing sessions. Results are newest-created first, ties broken by id.

    Ordering by the immutable ``created_at`` keeps keyset pagination stable while
    sessions are being written to.
    """

    user_id: str | None = None
    agent: str | None = None
    parent_id: str | None = None
    updated_after: datetime | None = None
    """Inclusive lower bound on ``updated_at``."""
    updated_before: datetime | None = None
    """Exclusive upper bound on ``updated_at``."""
    id_prefix: str | None = None
    """Only sessions whose id starts with this: an index range on the id
    (``id >= prefix AND id < prefix_upper_bound(prefix)``), so a listing never reads the
    rows of other prefixes (the server keeps each tenant's sessions under ``~T~``)."""
    exclude_id_prefix: str | None = None
    """Only sessions whose id does not start with this (empty or None: no bound): the
    listing skips that id range in the store (the server's default tenant skips the
    tenants' ``~`` ids this way)."""
    limit: int = 50
    cursor: str | None = None


UNSET: Any = object()
"""Marks an argument that was not passed (``None`` is a real value for titles)."""


@runtime_checkable
class ConversationStore(Protocol):
    """Sessions, messages, runs, spans and checkpoints."""

    url: StoreURL
    capabilities: frozenset[Capability]

    def ping(self) -> None:
        """Round-trip to the backend; raise BackendUnavailable when it does not answer."""

    def schema_version(self) -> str | None:
        """The applied schema/migration revision, or None for schemaless stores."""

    def close(self) -> None: ...

    # -- sessions -------------------------------------------------------------
    def create_session(self, info: SessionInfo) -> SessionInfo:
        """Insert a new session (``message_count``/``last_seq`` forced to 0).

        Raises Conflict if the id exists.
        """

    def put_session(self, info: SessionInfo) -> None:
        """Insert or overwrite a session exactly as given (timestamps, parent, counters).

        For import and transfer. ``last_seq`` never goes down; ``message_count`` is
        recomputed from stored messages where the backend can, else taken as given.
        """

    def get_session(self, session_id: str) -> SessionInfo:
        """Raises NotFound."""

    def list_sessions(self, query: SessionQuery) -> Page[SessionInfo]: ...

    def count_sessions(self, query: SessionQuery) -> int:
        """Like list_sessions without limit/cursor."""

    def update_session(
        self,
        session_id: str,
        *,
        title: str | None = UNSET,
        metadata: dict[str, Any] | None = None,
        replace_metadata: bool = False,
    ) -> SessionInfo:
        """Set the title, and merge (or replace) metadata; bumps ``updated_at``. NotFound."""

    def delete_session(self, session_id: str) -> bool:
        """Delete the session with its messages, runs, spans and checkpoints."""

    # -- messages -------------------------------------------------------------
    def append_messages(self, session_id: str, messages: Sequence[Message]) -> list[Message]:
        """Append in one atomic step; assign ``seq`` = last_seq+1, +2, ... to each.

        Gap-free and unique under concurrent writers. Updates ``message_count``,
        ``last_seq`` and ``updated_at`` of the session. Returns the same Message
        objects with ``seq`` set. Raises NotFound if the session does not exist.
        Cost is independent of the session's length.
        """

    def put_messages(self, session_id: str, messages: Sequence[Message]) -> int:
        """Insert messages keeping their id, seq and created_at; skip ids already stored.

        Idempotent, for import/transfer. Raises Conflict if a seq is held by another
        id. Raises last_seq to the highest seq stored. Returns how many were inserted.
        """

    def list_messages(
        self,
        session_id: str,
        *,
        after_seq: int | None = None,
        before_seq: int | None = None,
        last: int | None = None,
        limit: int | None = None,
    ) -> list[Message]:
        """Messages in seq order. ``last`` keeps the final N (after the seq filters).

        A missing session returns []. Use ``limit`` with ``after_seq`` to page forward.
        """

    def get_messages(self, session_id: str, ids: Sequence[str]) -> list[Message]:
        """The session's stored messages with these ids, in seq order; unknown ids are left out.

        How an append that met an existing id tells a retry (the same message again, so
        the stored one is the answer) from a real clash. Called only on that path.
        """

    def count_messages(self, session_id: str) -> int: ...

    def delete_messages(
        self, session_id: str, *, from_seq: int | None = None, to_seq: int | None = None
    ) -> int:
        """Delete messages with from_seq <= seq <= to_seq; seq values are never reused."""

    # -- runs, spans, checkpoints ----------------------------------------------
    def save_run(self, run: Run) -> None:
        """Insert or overwrite by id."""

    def get_run(self, run_id: str) -> Run:
        """Raises NotFound."""

    def list_runs(self, session_id: str, *, limit: int | None = None) -> list[Run]:
        """Oldest first (by started_at, then id); ``limit`` keeps the newest N."""

    def save_span(self, span: Span) -> None:
        """Insert or overwrite by id."""

    def get_span(self, span_id: str) -> Span:
        """Raises NotFound. Lets another process end a span this one started."""

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
        """Oldest first (by started_at, then id); ``limit`` keeps the newest N.

        ``id_prefix`` keeps only spans whose id starts with it, ``exclude_id_prefix`` only
        those whose id does not (empty or None: no bound); SQL and MongoDB read them as
        ranges of the primary key, so the other ids' rows are not read (the server keeps
        each tenant's spans under ``~T~`` and its default tenant's outside ``~``)."""

    def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Insert or overwrite by id."""

    def get_checkpoint(self, checkpoint_id: str) -> Checkpoint:
        """Raises NotFound."""

    def list_checkpoints(self, session_id: str) -> list[Checkpoint]:
        """Oldest first (by created_at, then id)."""

    def delete_checkpoint(self, checkpoint_id: str) -> bool: ...


@runtime_checkable
class BulkSessionLoader(Protocol):
    """Optional: load many whole sessions in one round trip (transfer's fast path).

    A store that has it is found with ``isinstance(store, BulkSessionLoader)``; copy
    falls back to put_session + put_messages per session otherwise.
    """

    def put_session_batch(self, items: Sequence[tuple[SessionInfo, Sequence[Message]]]) -> int:
        """``put_session`` then ``put_messages`` for each item, in one transaction.

        Same semantics as those two calls (exact upsert of the session; messages
        idempotent by id, seq and created_at kept, Conflict if a seq is held by another
        id; last_seq never goes down). All or nothing. Returns messages inserted.
        """


@dataclass(slots=True)
class WholeSession:
    """One session with everything it holds, as :class:`WholeSessionLoader` loads it."""

    info: SessionInfo
    messages: Sequence[Message]
    runs: Sequence[Run] = ()
    checkpoints: Sequence[Checkpoint] = ()
    spans: Sequence[Span] = ()


@dataclass(frozen=True, slots=True)
class Loaded:
    """What :meth:`WholeSessionLoader.load_sessions` did."""

    inserted: int
    """Messages inserted."""
    present: list[str]
    """Ids of the sessions the store already held: left untouched."""


@runtime_checkable
class WholeSessionLoader(Protocol):
    """Optional: load many whole sessions the store lacks, children included, in one call.

    For a store where every call is a round trip (the HTTP store): copy hands it a batch of
    sessions at once instead of a get, a put and the children's saves per session.
    """

    def load_sessions(self, items: Sequence[WholeSession]) -> Loaded:
        """For each item whose session the store lacks: its runs, checkpoints and spans
        (``save_*``), then the session and its messages as ``put_session_batch`` does
        (all of a session or none of it). A session the store already holds is left
        untouched and named in ``present``, so a re-sent call stores nothing twice."""


@runtime_checkable
class WireRowReader(Protocol):
    """Optional: a history as a server listing's rows, its JSON left as the store holds it.

    The server writes such rows out without parsing and re-encoding every value
    (``orjson.Fragment``); a store without them is listed through its messages."""

    def wire_rows(
        self, session_id: str, *, after_seq: int | None, before_seq: int | None, limit: int
    ) -> list[tuple[Any, ...]] | None:
        """Rows in ``praisondb.server.wire.MESSAGE_FIELDS`` order, as ``list_messages``
        with these bounds would return them; None when this store's engine has none."""


@runtime_checkable
class StateStore(Protocol):
    """Scoped key/value state with TTL and versions."""

    url: StoreURL
    capabilities: frozenset[Capability]

    def ping(self) -> None: ...

    def close(self) -> None: ...

    def get_entry(self, scope: str, key: str) -> StateEntry | None:
        """The live entry, or None (expired entries are invisible)."""

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
        """Write a value; version becomes the live entry's version + 1 (or 1).

        ``expected_version``: None writes unconditionally; 0 writes only if no live
        entry exists; n writes only if the live entry has version n. Otherwise Conflict.

        ``write_token`` names this write (``new_write_token()`` when None, made once per
        call, outside any retry loop) and is stored with the entry in the same atomic
        step. A write whose token is already on the live entry has landed before (its
        reply was lost): nothing is written and the entry as stored is returned, whatever
        ``expected_version`` says. The check rides on the read the write makes anyway.
        """

    def delete_entry(self, scope: str, key: str, *, expected_version: int | None = None) -> bool:
        """Delete; with expected_version, Conflict unless the live entry has that version.

        When the store itself re-sends a conditional delete (a lost reply) and finds no
        live entry, it returns True: the entry is gone, as asked, though it cannot tell
        whether its first attempt or another writer removed it. An unconditional delete
        re-sent that way returns False if its first attempt already removed the entry.
        """

    def incr(
        self, scope: str, key: str, amount: int = 1, *, expires_at: datetime | None = None
    ) -> int:
        """Atomically add to an integer value (missing counts as 0); returns the new value.

        ``expires_at`` applies only when the entry is created. A non-integer value
        is a ValidationError. Each call stores a write token as ``set_entry`` does, so
        the store's own re-send after a lost reply is not added twice, unless another
        write to the key landed in between (only the last writer's token is kept).
        """

    def list_entries(
        self,
        scope: str | None = None,
        prefix: str = "",
        *,
        limit: int | None = None,
        after: tuple[str, str] | None = None,
        scope_prefix: str = "",
    ) -> list[StateEntry]:
        """Live entries sorted by (scope, key); ``scope=None`` means every scope.

        ``after`` is the (scope, key) to continue after, for paging. ``scope_prefix``
        keeps only scopes starting with it, as a range on the scope where the backend
        has an ordered index (SQL, MongoDB), so the rows of other scopes are not read
        (the server keeps each tenant's state under ``tenant:T:``).
        """

    def delete_scope(self, scope: str) -> int: ...

    def put_entries(self, entries: Iterable[StateEntry]) -> None:
        """Overwrite entries exactly as given (version, expiry), for import/transfer.

        Write tokens are not copied: a put entry carries none.
        """


@runtime_checkable
class MemoriesStore(Protocol):
    """Long-term memories, kept by the conversation store (every backend has one).

    A memory belongs to one (scope, owner) pair, e.g. ``("user", "u-1")``. Listing order
    is newest first (created_at, then id, descending). The store ranks text matches with
    its own engine where it has one (SQLite FTS5, PostgreSQL tsvector, MySQL/MariaDB
    FULLTEXT, MongoDB text index) and with :mod:`praisondb.core.ranking` otherwise; the
    core turns those raw ranks into the 0..1 scores users see.
    """

    def add_memory(self, item: MemoryItem, *, max_items: int | None = None) -> list[str]:
        """Insert ``item`` and, in the same atomic step, keep at most ``max_items`` in its
        (scope, owner): the lowest ``quality`` go first, oldest first among equals, then by
        id, so concurrent writers end with the same survivors a serial run would keep.
        Returns the evicted ids (``item.id`` itself when it ranks lowest).

        Adding an id that exists with the same content is a no-op returning []; with
        different content, Conflict (a retried add is never stored twice).
        """

    def get_memory(self, memory_id: str) -> MemoryItem:
        """Raises NotFound."""

    def list_memories(
        self,
        scope: str | None = None,
        owner: str | None = None,
        *,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[MemoryItem]:
        """Newest first; ``scope``/``owner`` None means all (export, copy)."""

    def count_memories(self, scope: str | None = None, owner: str | None = None) -> int: ...

    def delete_memory(self, memory_id: str) -> bool: ...

    def delete_memories(self, scope: str, owner: str) -> int:
        """Remove every memory of (scope, owner); cleanup of a user's data calls it."""

    def search_memories(
        self, scope: str, owner: str, query: str, *, limit: int
    ) -> list[tuple[MemoryItem, float]]:
        """The best ``limit`` text matches of ``query`` with their raw rank (higher is
        better, comparable only within one result list), best first. No match: []."""

    def put_memories(self, items: Sequence[MemoryItem]) -> int:
        """Insert or overwrite exactly as given (id, quality, created_at, embedding), for
        import and copy; no eviction. Returns how many were written."""


@runtime_checkable
class AnalyticsSink(Protocol):
    """Where analytics events go. ``record`` must never block on the network."""

    url: StoreURL

    def record(self, event: Event) -> None: ...

    def flush(self, timeout: float | None = None) -> None: ...

    def ping(self) -> None: ...

    def close(self) -> None: ...


# -- shared helpers ----------------------------------------------------------


def new_write_token() -> str:
    """A unique name for one state write (see ``StateStore.set_entry``)."""
    return new_id()


def encode_cursor(*values: Any) -> str:
    """An opaque, URL-safe keyset cursor."""
    raw = orjson.dumps([v.isoformat() if isinstance(v, datetime) else v for v in values])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = orjson.loads(raw)
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise ValidationError(f"invalid cursor {cursor[:40]!r}") from exc
    if not isinstance(values, list) or len(values) != arity:
        raise ValidationError(f"invalid cursor {cursor[:40]!r}")
    return values


def session_cursor(info: SessionInfo) -> str:
    return encode_cursor(info.created_at, info.id)


def decode_session_cursor(cursor: str) -> tuple[datetime, str]:
    created, session_id = decode_cursor(cursor, 2)
    try:
        return datetime.fromisoformat(created), str(session_id)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"invalid cursor {cursor[:40]!r}") from exc


def merge_metadata(
    current: dict[str, Any], update: dict[str, Any] | None, replace: bool
) -> dict[str, Any]:
    """Shallow merge: top-level keys of ``update`` win."""
    if replace:
        return dict(update or {})
    return {**current, **(update or {})}
