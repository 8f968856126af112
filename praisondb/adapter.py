"""``DbSessionAdapter``: the session-store bridge a managed-agent runtime calls.

It speaks the small, dict-based session-store interface agent runtimes expect
(``add_message``, ``get_chat_history``, metadata get/set, ...) and keeps all of it in
a :class:`~praisondb.PraisonDB`, so a second process sees exactly what the first one
wrote: messages, and session metadata too (nothing is cached in memory).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Literal, TypeVar

from .coerce import json_safe
from .errors import ConfigError, NotFound, PraisonDBError
from .facade import PraisonDB
from .model import Content, SessionInfo
from .urls import redact_text

log = logging.getLogger("praisondb.adapter")
T = TypeVar("T")
OnError = Literal["raise", "warn"]


@dataclass(slots=True)
class StoredSession:
    """What ``get_session`` returns: the session id and its (persisted) metadata."""

    session_id: str
    metadata: dict[str, Any] = field(default_factory=dict)
    user_id: str | None = None
    agent: str | None = None
    title: str | None = None
    message_count: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @classmethod
    def of(cls, info: SessionInfo) -> StoredSession:
        return cls(
            info.id,
            dict(info.metadata),
            info.user_id,
            info.agent,
            info.title,
            info.message_count,
            info.created_at,
            info.updated_at,
        )


class DbSessionAdapter:
    """Session-store bridge over a PraisonDB (or a URL it opens itself).

    ``on_error="raise"`` (default) lets a failing store raise its typed
    :class:`~praisondb.PraisonDBError`; ``on_error="warn"`` logs the failure and returns
    False (or an empty result) instead, for runtimes that prefer to carry on.
    Extra keyword ``options`` go to ``PraisonDB`` when a URL is given.
    """

    def __init__(
        self,
        db_or_url: PraisonDB | str,
        *,
        on_error: OnError = "raise",
        agent: str | None = None,
        **options: Any,
    ) -> None:
        if on_error not in ("raise", "warn"):
            raise ConfigError(f"on_error must be 'raise' or 'warn', not {on_error!r}")
        if isinstance(db_or_url, PraisonDB):
            if options:
                raise ConfigError(f"options {sorted(options)} only apply when a URL is given")
            self.db, self._owns_db = db_or_url, False
        elif isinstance(db_or_url, str):
            self.db, self._owns_db = PraisonDB(db_or_url, **options), True
        else:
            raise ConfigError(
                f"DbSessionAdapter needs a PraisonDB or a URL, not {type(db_or_url).__name__}"
            )
        self.on_error: OnError = on_error
        self.agent = agent

    def __repr__(self) -> str:
        return f"DbSessionAdapter({self.db!r}, on_error={self.on_error!r})"

    # -- error policy ---------------------------------------------------------------
    def _guard(self, action: str, fn: Callable[[], T], fallback: T) -> T:
        error: PraisonDBError
        try:
            return fn()
        except PraisonDBError as exc:
            if self.on_error == "raise":
                raise
            error = exc
        except Exception as exc:  # escaped every store's translation: a bug, not an outage
            error = PraisonDBError(
                f"{action} failed with an unexpected {type(exc).__name__}: "
                f"{redact_text(str(exc))[:300]} (a bug in praisondb or in what called it, not "
                "an outage: retrying will not help; please report it with the traceback)"
            )
            if self.on_error == "raise":
                raise error from exc
            log.error("praisondb: %s", error, exc_info=exc)
            return fallback
        log.warning("praisondb: %s failed: %s", action, error)
        return fallback

    def _ensure(self, session_id: str) -> SessionInfo:
        return self.db.sessions.get_or_create(session_id, agent=self.agent)

    # -- the session-store interface ---------------------------------------------------
    def add_message(
        self,
        session_id: str,
        role: str,
        content: Content,
        metadata: dict[str, Any] | None = None,
    ) -> bool:
        """Append a message (creating the session on first use)."""

        def write() -> bool:
            meta = json_safe(dict(metadata or {}))
            try:
                self.db.messages.append(session_id, role, content, meta)
            except NotFound:
                self._ensure(session_id)
                self.db.messages.append(session_id, role, content, meta)
            return True

        return self._guard("add_message", write, False)

    def get_chat_history(
        self, session_id: str, max_messages: int | None = None
    ) -> list[dict[str, Any]]:
        """``[{"role", "content"}, ...]`` oldest first; ``max_messages`` keeps the last N."""

        def read() -> list[dict[str, Any]]:
            messages = self.db.messages.list(session_id, last=max_messages or None)
            return [{"role": m.role, "content": m.content} for m in messages]

        return self._guard("get_chat_history", read, [])

    def clear_session(self, session_id: str) -> bool:
        """Remove every message but keep the session and its metadata."""

        def clear() -> bool:
            if not self.db.sessions.exists(session_id):
                return False
            self.db.messages.delete(session_id)
            return True

        return self._guard("clear_session", clear, False)

    def delete_session(self, session_id: str) -> bool:
        """Delete the session with everything it owns."""
        return self._guard("delete_session", lambda: self.db.sessions.delete(session_id), False)

    def session_exists(self, session_id: str) -> bool:
        return self._guard("session_exists", lambda: self.db.sessions.exists(session_id), False)

    def get_session(self, session_id: str) -> StoredSession | None:
        """The session with its metadata, or None if it does not exist."""

        def read() -> StoredSession | None:
            try:
                return StoredSession.of(self.db.sessions.get(session_id))
            except NotFound:
                return None

        return self._guard("get_session", read, None)

    def set_metadata(self, session_id: str, metadata: dict[str, Any]) -> bool:
        """Merge ``metadata`` into the session's (top-level keys win), creating it if needed."""

        def write() -> bool:
            meta = json_safe(dict(metadata))
            try:
                self.db.sessions.update(session_id, metadata=meta)
            except NotFound:
                self._ensure(session_id)
                self.db.sessions.update(session_id, metadata=meta)
            return True

        return self._guard("set_metadata", write, False)

    def get_metadata(self, session_id: str) -> dict[str, Any]:
        """The session's metadata ({} if the session does not exist)."""
        found = self.get_session(session_id)
        return dict(found.metadata) if found is not None else {}

    def update_session_metadata(self, /, session_id: str, **fields: Any) -> bool:
        """Set metadata fields; fields passed as None are left as they are."""
        values = {k: v for k, v in fields.items() if v is not None}
        if not values:
            return True
        return self.set_metadata(session_id, values)

    # -- lifecycle ------------------------------------------------------------------
    def close(self) -> None:
        """Close the PraisonDB if this adapter opened it from a URL."""
        if self._owns_db:
            self.db.close()

    def __enter__(self) -> DbSessionAdapter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
