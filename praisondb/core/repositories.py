"""The repositories behind ``db.sessions``, ``db.messages``, ``db.state``, ``db.checkpoints``
and ``db.runs``: validation in front of the stores, analytics events behind them.

They, and the rest of the session layer, see a :class:`~praisondb.PraisonDB` only through
:class:`DataPort`: its stores, its event log and the repositories themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import Conflict, NotFound, ValidationError
from ..ids import new_id
from ..model import (
    JSON,
    Checkpoint,
    Content,
    Event,
    Message,
    Page,
    Run,
    SessionInfo,
    StateEntry,
    utcnow,
)
from ..stores.base import UNSET, SessionQuery
from ..validation import (
    check_id,
    check_int,
    check_json,
    check_key,
    check_message,
    check_metadata,
    check_scope,
)
from .arguments import (
    TTL,
    check_filters,
    check_free_text,
    check_limit,
    check_prefix,
    check_run,
    expiry,
)
from .batches import already_stored, as_message
from .events import EventLog, message_event
from .export import export_session, import_session
from .lock_names import LOCK_SCOPE, session_lock_name
from .memory import memories_store
from .tokens import verify_token

if TYPE_CHECKING:
    from ..stores.base import ConversationStore, StateStore

MAX_PAGE = 1000


class DataPort(Protocol):
    """What the session layer needs from a database object, and nothing more."""

    sessions: Sessions
    messages: Messages
    state: State
    checkpoints: Checkpoints
    runs: Runs

    @property
    def conversations(self) -> ConversationStore: ...

    @property
    def state_store(self) -> StateStore: ...

    @property
    def temp_state(self) -> StateStore:
        """Where the ``temp`` scope lives: this process only, never persisted."""

    @property
    def events(self) -> EventLog: ...


class Sessions:
    def __init__(self, db: DataPort) -> None:
        self._db = db

    def create(
        self,
        session_id: str | None = None,
        user_id: str | None = None,
        agent: str | None = None,
        title: str | None = None,
        metadata: dict[str, Any] | None = None,
        *,
        parent_id: str | None = None,
        forked_at_seq: int | None = None,
    ) -> SessionInfo:
        """Create a session; a missing id is generated. Conflict if the id exists."""
        check_free_text(title, "title")
        check_limit(forked_at_seq, "forked_at_seq")
        info = SessionInfo(
            id=check_id(session_id) if session_id is not None else new_id(),
            user_id=check_id(user_id, "user id") if user_id is not None else None,
            agent=check_id(agent, "agent") if agent is not None else None,
            title=title,
            metadata=check_metadata(metadata),
            parent_id=check_id(parent_id, "parent id") if parent_id is not None else None,
            forked_at_seq=forked_at_seq,
        )
        info.updated_at = info.created_at
        created = self._db.conversations.create_session(info)
        self._db.events.remember(created)
        self._db.events.emit(Event("session_start", session_id=created.id), created)
        return created

    def get(self, session_id: str) -> SessionInfo:
        info = self._db.conversations.get_session(check_id(session_id))
        self._db.events.remember(info)
        return info

    def exists(self, session_id: str) -> bool:
        try:
            self.get(session_id)
        except NotFound:
            return False
        return True

    def get_or_create(
        self,
        /,
        session_id: str,
        user_id: str | None = None,
        agent: str | None = None,
        **fields: Any,
    ) -> SessionInfo:
        try:
            return self.get(session_id)
        except NotFound:
            pass
        try:
            return self.create(session_id, user_id=user_id, agent=agent, **fields)
        except Conflict:  # another writer created it first
            return self.get(session_id)

    def _query(self, limit: int = 50, cursor: str | None = None, **filters: Any) -> SessionQuery:
        check_limit(limit, "limit", 1, MAX_PAGE, optional=False)
        if cursor is not None and not isinstance(cursor, str):
            raise ValidationError(
                f"cursor must be a page's next_cursor string, not {type(cursor).__name__}"
            )
        check_filters(filters)
        return SessionQuery(limit=limit, cursor=cursor, **filters)

    def list(
        self,
        user_id: str | None = None,
        agent: str | None = None,
        *,
        parent_id: str | None = None,
        updated_after: datetime | None = None,
        updated_before: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[SessionInfo]:
        """Newest-created first; pass ``page.next_cursor`` back for the next page."""
        return self._db.conversations.list_sessions(
            self._query(
                limit,
                cursor,
                user_id=user_id,
                agent=agent,
                parent_id=parent_id,
                updated_after=updated_after,
                updated_before=updated_before,
            )
        )

    def iterate(self, /, page_size: int = 200, **filters: Any) -> Iterator[SessionInfo]:
        """Every matching session, page by page."""
        check_limit(page_size, "page_size", 1, MAX_PAGE, optional=False)
        cursor: str | None = None
        while True:
            page = self.list(limit=page_size, cursor=cursor, **filters)
            yield from page.items
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def count(
        self,
        user_id: str | None = None,
        agent: str | None = None,
        *,
        parent_id: str | None = None,
        updated_after: datetime | None = None,
        updated_before: datetime | None = None,
    ) -> int:
        filters: dict[str, Any] = {
            "user_id": user_id,
            "agent": agent,
            "parent_id": parent_id,
            "updated_after": updated_after,
            "updated_before": updated_before,
        }
        check_filters(filters)
        return self._db.conversations.count_sessions(SessionQuery(**filters))

    def update(
        self,
        session_id: str,
        *,
        title: str | None = UNSET,
        metadata: dict[str, Any] | None = None,
        replace_metadata: bool = False,
    ) -> SessionInfo:
        """Set the title and merge ``metadata`` into the session's (top-level keys win)."""
        if title is not UNSET:
            check_free_text(title, "title")
        return self._db.conversations.update_session(
            check_id(session_id),
            title=title,
            metadata=check_metadata(metadata),
            replace_metadata=replace_metadata,
        )

    def delete(self, session_id: str) -> bool:
        """Delete the session, its messages, runs, checkpoints, session-scoped state and lock record."""
        deleted = self._db.conversations.delete_session(check_id(session_id))
        self._db.state.clear(f"session:{session_id}")
        self._db.state.delete(session_lock_name(session_id), scope=LOCK_SCOPE)
        self._db.events.forget(session_id)
        return deleted

    def cleanup(
        self,
        older_than: timedelta,
        *,
        dry_run: bool = False,
        user_id: str | None = None,
        agent: str | None = None,
        memories: bool = False,
    ) -> int:
        """Delete whole sessions (messages, runs, checkpoints, state, lock record) not
        updated for ``older_than``; returns how many were (or, with ``dry_run``, would be)
        deleted. ``memories=True`` (with ``user_id``) also removes that user's long-term
        memories (not counted in the result)."""
        if not isinstance(older_than, timedelta) or older_than <= timedelta(0):
            raise ValidationError(f"older_than must be a positive timedelta, not {older_than!r}")
        if memories is not False and (memories is not True or user_id is None):
            raise ValidationError(
                "cleanup removes the memories of one user: pass user_id with memories"
            )
        cutoff = utcnow() - older_than
        doomed = [
            info.id for info in self.iterate(user_id=user_id, agent=agent, updated_before=cutoff)
        ]
        if dry_run:
            return len(doomed)
        count = 0
        for session_id in doomed:
            if self.delete(session_id):
                count += 1
        if memories and user_id is not None:
            memories_store(self._db).delete_memories("user", check_id(user_id, "user_id"))
        return count

    def verify_token(self, token: str, secret: str | bytes) -> str:
        """The session id named by a token from ``Session.token``; checks the HMAC
        signature in constant time and the expiry. Raises InvalidToken / TokenExpired
        (both ValidationError)."""
        return verify_token(token, secret)

    def export(self, session_id: str) -> dict[str, Any]:
        """The session as a JSON-safe, versioned document (``Session.export``)."""
        return export_session(self._db.conversations, self._db.state_store, check_id(session_id))

    def import_session(self, data: dict[str, Any]) -> SessionInfo:
        """Write an exported session, keeping ids, seq and timestamps; idempotent."""
        info = import_session(self._db.conversations, self._db.state_store, data)
        self._db.events.remember(info)
        return info


class Messages:
    def __init__(self, db: DataPort) -> None:
        self._db = db

    def append(
        self,
        session_id: str,
        role: str,
        content: Content,
        metadata: dict[str, Any] | None = None,
        *,
        run_id: str | None = None,
        id: str | None = None,
    ) -> Message:
        """Append one message; the store assigns its ``seq``.

        ``id`` makes the call safe to retry: sending the same id with the same role,
        content, metadata and run id again returns the stored message (nothing is
        stored twice); the same id with anything else is :class:`Conflict`.
        """
        message = Message(session_id, role, content, metadata or {}, run_id)
        if id is not None:
            message.id = id
        (stored,) = self.extend(session_id, [message])
        return stored

    def extend(
        self, session_id: str, messages: Iterable[Message | dict[str, Any]]
    ) -> list[Message]:
        """Append many in one round trip and one transaction, all or nothing.

        Retry-safe by message id: when every message of the batch is already stored
        with the same role, content, metadata and run id (a retry after a lost reply),
        the stored messages are returned and nothing is written or logged again.
        """
        check_id(session_id)
        if isinstance(messages, (str, bytes, dict)) or not isinstance(messages, Iterable):
            raise ValidationError(
                f"messages must be a list of Message objects or dicts, not {type(messages).__name__}"
            )
        batch = [check_message(as_message(session_id, m)) for m in messages]
        try:
            stored = self._db.conversations.append_messages(session_id, batch)
        except Conflict:
            return already_stored(self._db.conversations, session_id, batch)
        if self._db.events.enabled:
            for message in stored:
                self._db.events.emit(message_event(message))
        return stored

    def list(
        self,
        session_id: str,
        *,
        last: int | None = None,
        after_seq: int | None = None,
        before_seq: int | None = None,
        limit: int | None = None,
    ) -> list[Message]:
        check_limit(last, "last")
        check_limit(limit)
        check_limit(after_seq, "after_seq")
        check_limit(before_seq, "before_seq")
        return self._db.conversations.list_messages(
            check_id(session_id), after_seq=after_seq, before_seq=before_seq, last=last, limit=limit
        )

    def iterate(
        self, session_id: str, *, after_seq: int = 0, batch: int = 1000
    ) -> Iterator[Message]:
        """Every message in seq order, ``batch`` at a time, with bounded memory."""
        check_limit(after_seq, "after_seq", optional=False)
        check_limit(batch, "batch", 1, optional=False)
        while True:
            chunk = self.list(session_id, after_seq=after_seq, limit=batch)
            yield from chunk
            if len(chunk) < batch:
                return
            after_seq = chunk[-1].seq

    def count(self, session_id: str) -> int:
        return self._db.conversations.count_messages(check_id(session_id))

    def delete(
        self, session_id: str, *, from_seq: int | None = None, to_seq: int | None = None
    ) -> int:
        """Delete messages in [from_seq, to_seq]; their seq values are never handed out again."""
        check_limit(from_seq, "from_seq")
        check_limit(to_seq, "to_seq")
        return self._db.conversations.delete_messages(
            check_id(session_id), from_seq=from_seq, to_seq=to_seq
        )


class State:
    """Scoped key/value state. ``temp`` scope lives in this process only."""

    def __init__(self, db: DataPort) -> None:
        self._db = db

    def _store(self, scope: str) -> Any:
        return self._db.temp_state if scope == "temp" else self._db.state_store

    def get(self, key: str, default: JSON = None, *, scope: str = "app") -> JSON:
        entry = self.get_entry(key, scope=scope)
        return default if entry is None else entry.value

    def get_entry(self, key: str, *, scope: str = "app") -> StateEntry | None:
        return self._store(check_scope(scope)).get_entry(scope, check_key(key))  # type: ignore[no-any-return]

    def set(
        self,
        key: str,
        value: JSON,
        *,
        scope: str = "app",
        ttl: TTL = None,
        expected_version: int | None = None,
        write_token: str | None = None,
    ) -> StateEntry:
        """Write; with ``expected_version`` it is a compare-and-set (0 = must not exist).

        ``write_token`` names one logical change, for a caller that retries after an
        ambiguous error (BackendUnavailable): re-sent with the same token, a write that
        already landed is not applied again and the entry as stored is returned, even if
        the caller re-read and re-computed the value in between. Without one, praisondb
        makes a token per call, which covers its own retries.
        """
        check_key(key)
        value = check_json(value, f"state value {key!r}")
        check_limit(expected_version, "expected_version")
        if write_token is not None:
            check_id(write_token, "write_token")
        return self._store(check_scope(scope)).set_entry(  # type: ignore[no-any-return]
            scope,
            key,
            value,
            expires_at=expiry(ttl),
            expected_version=expected_version,
            write_token=write_token,
        )

    def compare_and_set(
        self,
        key: str,
        value: JSON,
        expected_version: int,
        *,
        scope: str = "app",
        ttl: TTL = None,
        write_token: str | None = None,
    ) -> StateEntry:
        """Raises Conflict unless the live entry is at ``expected_version`` (0: absent)."""
        return self.set(
            key,
            value,
            scope=scope,
            ttl=ttl,
            expected_version=expected_version,
            write_token=write_token,
        )

    def delete(self, key: str, *, scope: str = "app", expected_version: int | None = None) -> bool:
        check_limit(expected_version, "expected_version")
        return self._store(check_scope(scope)).delete_entry(  # type: ignore[no-any-return]
            scope, check_key(key), expected_version=expected_version
        )

    def incr(self, key: str, amount: int = 1, *, scope: str = "app", ttl: TTL = None) -> int:
        """Add ``amount``; a result outside signed 64 bits is ValidationError, value unchanged."""
        check_int(amount, "amount")
        return self._store(check_scope(scope)).incr(  # type: ignore[no-any-return]
            scope, check_key(key), amount, expires_at=expiry(ttl)
        )

    def list(
        self, scope: str = "app", prefix: str = "", *, limit: int | None = None
    ) -> list[StateEntry]:
        check_limit(limit)
        check_prefix(prefix)
        return self._store(check_scope(scope)).list_entries(scope, prefix, limit=limit)  # type: ignore[no-any-return]

    def items(self, scope: str = "app", prefix: str = "") -> dict[str, JSON]:
        return {e.key: e.value for e in self.list(scope, prefix)}

    def clear(self, scope: str) -> int:
        """Delete every entry of ``scope``."""
        return self._store(check_scope(scope)).delete_scope(scope)  # type: ignore[no-any-return]


class Checkpoints:
    def __init__(self, db: DataPort) -> None:
        self._db = db

    def create(
        self, session_id: str, label: str | None = None, *, state: dict[str, Any] | None = None
    ) -> Checkpoint:
        """Record the history position and a snapshot of the session-scoped state."""
        check_free_text(label, "label")
        if state is not None:
            state = check_metadata(state, "checkpoint state")
        info = self._db.sessions.get(session_id)
        snapshot = self._db.state.items(f"session:{session_id}") if state is None else state
        checkpoint = Checkpoint(session_id, info.last_seq, snapshot, label)
        self._db.conversations.save_checkpoint(checkpoint)
        return checkpoint

    def get(self, checkpoint_id: str) -> Checkpoint:
        return self._db.conversations.get_checkpoint(check_id(checkpoint_id, "checkpoint id"))

    def list(self, session_id: str) -> list[Checkpoint]:
        return self._db.conversations.list_checkpoints(check_id(session_id))

    def delete(self, checkpoint_id: str) -> bool:
        return self._db.conversations.delete_checkpoint(check_id(checkpoint_id, "checkpoint id"))


class Runs:
    """Agent turns: token usage, latency and outcome."""

    def __init__(self, db: DataPort) -> None:
        self._db = db

    def start(
        self,
        session_id: str,
        *,
        model: str | None = None,
        run_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Run:
        check_free_text(model, "model")
        run = Run(
            check_id(session_id),
            id=check_id(run_id, "run id") if run_id else new_id(),
            model=model,
            metadata=check_metadata(metadata),
        )
        self._db.conversations.save_run(run)
        self._db.events.emit(
            Event(
                "run_start",
                ts=run.started_at,
                session_id=run.session_id,
                model=run.model or "",
                status=run.status,
                attributes={"run_id": run.id},
            )
        )
        return run

    def end(
        self,
        run_id: str,
        *,
        status: str = "completed",
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        error: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Run:
        check_free_text(status, "status", optional=False)
        check_free_text(error, "error")
        check_limit(input_tokens, "input_tokens")
        check_limit(output_tokens, "output_tokens")
        metadata = check_metadata(metadata)
        run = self.get(run_id)
        run.status = status
        run.ended_at = utcnow()
        run.error = error
        if input_tokens is not None:
            run.input_tokens = input_tokens
        if output_tokens is not None:
            run.output_tokens = output_tokens
        run.metadata = {**run.metadata, **metadata}
        self._db.conversations.save_run(run)
        self._db.events.emit(
            Event(
                "run",
                ts=run.ended_at,
                session_id=run.session_id,
                model=run.model or "",
                input_tokens=run.input_tokens,
                output_tokens=run.output_tokens,
                latency_ms=(run.ended_at - run.started_at).total_seconds() * 1000,
                status=status,
                attributes={"run_id": run.id, **({"error": error} if error else {})},
            )
        )
        return run

    def save(self, run: Run) -> Run:
        check_run(run)
        self._db.conversations.save_run(run)
        return run

    def get(self, run_id: str) -> Run:
        return self._db.conversations.get_run(check_id(run_id, "run id"))

    def list(self, session_id: str, *, limit: int | None = None) -> list[Run]:
        check_limit(limit)
        return self._db.conversations.list_runs(check_id(session_id), limit=limit)
