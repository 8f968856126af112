"""The domain model: plain dataclasses that know nothing about any backend."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from . import clock
from .ids import new_id

JSON = Any
"""Anything orjson can serialise: dict, list, str, int, float, bool, None."""

Content = str | list[dict[str, Any]]
Role = Literal["user", "assistant", "system", "tool"]
ROLES: frozenset[str] = frozenset({"user", "assistant", "system", "tool"})
AGENT_KEY = "praisondb_agent"
"""Message metadata key naming the agent of a multi-agent session that wrote it."""

T = TypeVar("T")


def utcnow() -> datetime:
    """Aware UTC now; every timestamp praisondb stores is aware UTC with microseconds.

    Read through :mod:`praisondb.clock`, so tests can move time forward."""
    return clock.now()


@dataclass(slots=True)
class SessionInfo:
    """A conversation's header: who it belongs to, where it forked from, how long it is.

    Stores keep it beside the messages so listing sessions never reads a message."""

    id: str
    user_id: str | None = None
    agent: str | None = None
    title: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    parent_id: str | None = None
    forked_at_seq: int | None = None
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    message_count: int = 0
    last_seq: int = 0
    """Highest seq ever assigned; seq values are never reused, even after deletes."""


@dataclass(slots=True)
class Message:
    """One message of a session. ``id`` is unique in its session, so a message re-sent
    with the same id is never stored twice; ``seq`` orders it within the session."""

    session_id: str
    role: str
    content: Content
    metadata: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    id: str = field(default_factory=new_id)
    seq: int = 0
    """0 until the store assigns it."""
    created_at: datetime = field(default_factory=utcnow)


@dataclass(slots=True)
class Run:
    """One agent turn."""

    session_id: str
    id: str = field(default_factory=new_id)
    model: str | None = None
    status: str = "running"
    input_tokens: int = 0
    output_tokens: int = 0
    started_at: datetime = field(default_factory=utcnow)
    ended_at: datetime | None = None
    error: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Checkpoint:
    """A named point in a session (up to ``seq``) with the state to resume from there."""

    session_id: str
    seq: int
    state: dict[str, Any] = field(default_factory=dict)
    label: str | None = None
    id: str = field(default_factory=new_id)
    created_at: datetime = field(default_factory=utcnow)


@dataclass(slots=True)
class Span:
    """A trace or a span inside one; a trace is the span whose ``parent_id`` is None."""

    trace_id: str
    name: str
    id: str = field(default_factory=new_id)
    parent_id: str | None = None
    session_id: str | None = None
    user_id: str | None = None
    status: str = "running"
    attributes: dict[str, Any] = field(default_factory=dict)
    started_at: datetime = field(default_factory=utcnow)
    ended_at: datetime | None = None


@dataclass(slots=True)
class StateEntry:
    """One key-value entry of a scope, with the version compare-and-set checks."""

    scope: str
    key: str
    value: JSON
    version: int = 1
    """Starts at 1 and grows by one on every write; the compare-and-set token."""
    expires_at: datetime | None = None
    updated_at: datetime = field(default_factory=utcnow)


MemoryScope = Literal["user", "agent", "app"]
MEMORY_SCOPES: frozenset[str] = frozenset({"user", "agent", "app"})


@dataclass(slots=True)
class MemoryItem:
    """One long-term memory: a fact kept for a user, an agent or an app across sessions.

    ``quality`` is the score the item had when it was added (the default scorer's or
    the one set with ``set_quality_scorer``); eviction past ``max_memories`` removes the
    lowest quality first. ``score`` is filled only on search results."""

    text: str
    scope: str
    """``user``, ``agent`` or ``app``: whose memory this is."""
    owner: str
    """The user id, agent name or app name the scope belongs to."""
    importance: float = 0.5
    relevance: float = 0.5
    quality: float = 0.0
    metadata: dict[str, Any] = field(default_factory=dict)
    embedding: list[float] | None = None
    """Set when the memory store has an ``embed=`` function; ranks by cosine."""
    id: str = field(default_factory=new_id)
    created_at: datetime = field(default_factory=utcnow)
    score: float | None = None
    """A search result's score (0..1); None outside search results. Never stored."""


@dataclass(slots=True)
class Event:
    """One analytics event (a message, a run, a tool call, an error)."""

    type: str
    ts: datetime = field(default_factory=utcnow)
    session_id: str = ""
    user_id: str = ""
    agent: str = ""
    model: str = ""
    role: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    latency_ms: float = 0.0
    tool: str = ""
    status: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=new_id)


@dataclass(slots=True)
class Page(Generic[T]):
    """One page of a listing; pass ``next_cursor`` back for the next (None: the last)."""

    items: list[T]
    next_cursor: str | None = None
