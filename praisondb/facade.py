"""``PraisonDB``: one object for conversations, fast state and analytics.

Stores open lazily on first use, so constructing a ``PraisonDB`` never touches the
network and ``import praisondb`` never imports a driver.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from types import TracebackType
from typing import Any

from .analytics.facade import Analytics
from .core.events import EventLog
from .core.memory import Memory
from .core.repositories import Checkpoints, Messages, Runs, Sessions, State
from .core.session import Session
from .core.session_memory import SessionMemory
from .integrations.praisonai import LifecycleMixin
from .stores import open_store
from .stores.base import ConversationStore, StateStore
from .stores.memory import MemoryStore
from .urls import StoreURL, parse_url

DEFAULT_DATABASE_URL = "sqlite:///praisondb.db"


class PraisonDB(LifecycleMixin):
    """The facade.

    ``database_url`` holds conversations (default ``sqlite:///praisondb.db``);
    ``state_url`` holds key/value state (default: the conversation store);
    ``analytics_url`` receives events (default: none). Extra keyword ``options`` go to
    the conversation store (for SQL: ``pool_size``, ``max_overflow``, ``pool_timeout``,
    ``pool_recycle``, ``pool_pre_ping``, ``echo``, ``auto_migrate``); ``state_options`` and
    ``analytics_options`` go to the other two.
    """

    def __init__(
        self,
        database_url: str | None = None,
        state_url: str | None = None,
        analytics_url: str | None = None,
        *,
        state_options: dict[str, Any] | None = None,
        analytics_options: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        self.database_url: StoreURL = parse_url(database_url or DEFAULT_DATABASE_URL)
        self.state_url: StoreURL | None = parse_url(state_url, "state") if state_url else None
        self.analytics_url: StoreURL | None = (
            parse_url(analytics_url, "analytics") if analytics_url else None
        )
        self._options = options
        self._state_options = state_options or {}
        self._analytics_options = analytics_options or {}
        self._lock = threading.RLock()
        self._conversations: ConversationStore | None = None
        self._state: StateStore | None = None
        self._analytics: Analytics | None = None
        self._temp_state = MemoryStore(parse_url("memory://"))
        self._events = EventLog(
            lambda: self.analytics,
            lambda session_id: self.conversations.get_session(session_id),
            enabled=self.analytics_url is not None,
        )
        self._closed = False
        self.sessions = Sessions(self)
        self.messages = Messages(self)
        self.state = State(self)
        self.checkpoints = Checkpoints(self)
        self.runs = Runs(self)

    def __repr__(self) -> str:
        parts = [f"database_url={self.database_url.redacted!r}"]
        if self.state_url:
            parts.append(f"state_url={self.state_url.redacted!r}")
        if self.analytics_url:
            parts.append(f"analytics_url={self.analytics_url.redacted!r}")
        return f"PraisonDB({', '.join(parts)})"

    # -- stores, opened on first use --------------------------------------------
    @property
    def conversations(self) -> ConversationStore:
        store = self._conversations
        if store is None:
            with self._lock:
                if self._conversations is None:
                    self._conversations = self._open(
                        self.database_url, "conversations", self._options
                    )
                store = self._conversations
        return store

    @property
    def state_store(self) -> StateStore:
        store = self._state
        if store is None:
            with self._lock:
                if self._state is None:
                    if self.state_url is None or self.state_url.secret == self.database_url.secret:
                        self._state = self.conversations  # type: ignore[assignment]
                    else:
                        self._state = self._open(self.state_url, "state", self._state_options)
                store = self._state
        assert store is not None
        return store

    @property
    def analytics(self) -> Analytics | None:
        """The :class:`~praisondb.analytics.Analytics`, or None when no ``analytics_url`` was given.

        Besides ``record``/``flush``/``close`` it answers the ready queries
        (``db.analytics.tokens_by_model()``, ``.report()``, read-only ``.query(sql, params)``).
        """
        if self.analytics_url is None:
            return None
        sink = self._analytics
        if sink is None:
            with self._lock:
                if self._analytics is None:
                    self._analytics = Analytics(
                        self._open(self.analytics_url, "analytics", self._analytics_options)
                    )
                sink = self._analytics
        return sink

    def _open(self, url: StoreURL, role: str, options: dict[str, Any]) -> Any:
        """Open the store of one role (the async face opens them on async drivers)."""
        return open_store(url, role, **options)

    def session(
        self,
        session_id: str,
        user_id: str | None = None,
        agent: str | None = None,
        *,
        memory: SessionMemory = False,
    ) -> Session:
        """The :class:`Session` ``session_id`` (created if it does not exist yet).

        ``memory=True`` (or a :class:`~praisondb.core.memory.Memory`) gives it
        ``session.memory``, the user's long-term memories, and puts the best of them
        in ``session.context()``."""
        return Session(self, session_id, user_id=user_id, agent=agent, memory=memory)

    def memory(
        self,
        quality_threshold: float = 0.0,
        max_memories: int = 1000,
        embed: Callable[[str], Sequence[float]] | None = None,
        recency_half_life: timedelta = timedelta(days=30),
    ) -> Memory:
        """Long-term memory kept in the conversation store (README: Long-term memory).

        Items scoring under ``quality_threshold`` (0..1) are not stored; past
        ``max_memories`` per scope the lowest quality go first; ``embed(text) -> floats``
        turns on vector search (cosine); recency halves every ``recency_half_life``."""
        return Memory(self, quality_threshold, max_memories, embed, recency_half_life)

    @property
    def temp_state(self) -> StateStore:
        """The ``temp`` scope's store: this process only, never persisted."""
        return self._temp_state

    @property
    def events(self) -> EventLog:
        """Analytics events of this database object (a no-op without ``analytics_url``)."""
        return self._events

    # -- lifecycle ------------------------------------------------------------------
    def ping(self) -> dict[str, float]:
        """Round-trip each configured role; returns milliseconds per role.

        Raises BackendUnavailable for the first role that does not answer.
        """
        result: dict[str, float] = {}
        targets: list[tuple[str, Any]] = [("conversations", self.conversations)]
        if self.state_url is not None:
            targets.append(("state", self.state_store))
        if self.analytics is not None:
            targets.append(("analytics", self.analytics))
        for role, store in targets:
            started = time.perf_counter()
            store.ping()
            result[role] = (time.perf_counter() - started) * 1000
        return result

    def close(self) -> None:
        """Flush analytics and release every connection pool. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            closed: list[Any] = []
            for store in (self._analytics, self._state, self._conversations):
                if store is not None and not any(store is c for c in closed):
                    store.close()
                    closed.append(store)
            self._analytics = self._state = self._conversations = None

    def __enter__(self) -> PraisonDB:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
