"""Long-term memory: facts kept per user, agent or app, scored, capped and searched.

``db.memory(quality_threshold=0.0, max_memories=1000, embed=None,
recency_half_life=timedelta(days=30))`` returns a :class:`Memory`.

Quality (decided once, when an item is added)::

    quality = relevance * 0.4 + recency * 0.3 + importance * 0.3
    recency = 0.5 ** (age / recency_half_life)      # 1.0 at add time, 0.5 after one half-life

so at add time the default quality is ``relevance * 0.4 + 0.3 + importance * 0.3``.
``set_quality_scorer(fn)`` replaces the formula: ``fn(item)`` gets the new
:class:`~praisondb.model.MemoryItem` and returns a number in 0..1. An item whose quality
is under ``quality_threshold`` is not stored (``add`` returns None; the ``praisondb.memory``
logger says why at DEBUG). Past ``max_memories`` in one scope the store evicts the lowest
quality first (oldest first among equals, then by id) in the same atomic step as the
insert, so concurrent writers keep what a serial run would.

Search score (0..1, on each result's ``.score``)::

    score = match * 0.4 + recency * 0.3 + importance * 0.3

the same weights, with the query match in place of ``relevance`` and recency measured at
search time. ``match`` is the store's full-text rank divided by the best rank of the
candidates (so the best text match has 1.0), or, with ``embed=``, the cosine similarity
of the query's vector and the item's stored vector (negative taken as 0). Candidates
are the store's best ``max(4 * limit, 20)`` text matches, or every item of the scope for
vectors; results are the best ``limit`` by score, ties broken by match, then newest.
"""

from __future__ import annotations

import builtins
import logging
import math
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, cast

from ..errors import ConfigError, ValidationError
from ..model import MemoryItem, Page, utcnow
from ..stores.base import MemoriesStore
from ..validation import (
    check_id,
    check_memory_text,
    check_metadata,
    check_text,
    check_unit,
    check_vector,
)
from .arguments import check_limit

if TYPE_CHECKING:
    from ..stores.base import ConversationStore


class DataPort(Protocol):
    """What memories need of a database object: its conversation store."""

    @property
    def conversations(self) -> ConversationStore: ...


log = logging.getLogger("praisondb.memory")

RELEVANCE_WEIGHT = 0.4
RECENCY_WEIGHT = 0.3
IMPORTANCE_WEIGHT = 0.3
MAX_PAGE = 10_000
SCOPE_KEYWORDS = {"user_id": "user", "agent": "agent", "app": "app"}

Scorer = Callable[[MemoryItem], float]
Embed = Callable[[str], Sequence[float]]
Matches = list[tuple[MemoryItem, float]]
"""Items with their match (0..1) before the search score is computed."""


def memories_store(db: DataPort) -> MemoriesStore:
    """The conversation store's memories, or a ConfigError when its backend has none."""
    store = db.conversations
    if not callable(getattr(store, "add_memory", None)):
        raise ConfigError(
            f"{type(store).__name__} keeps no long-term memories; use a backend that does "
            "(SQLite, PostgreSQL, MySQL/MariaDB, MongoDB, Redis, JSON files, memory://)"
        )
    return cast(MemoriesStore, store)


def check_scope(
    user_id: str | None, agent: str | None, app: str | None, default: tuple[str, str] | None
) -> tuple[str, str] | None:
    """``(scope, owner)`` from at most one of the keywords; ``default`` when none is given."""
    given = [
        (SCOPE_KEYWORDS[name], check_id(value, name))
        for name, value in (("user_id", user_id), ("agent", agent), ("app", app))
        if value is not None
    ]
    if len(given) > 1:
        raise ValidationError("pass exactly one of user_id=, agent= or app=, not several")
    return given[0] if given else default


def recency(created_at: datetime, half_life: timedelta, now: datetime | None = None) -> float:
    """``0.5 ** (age / half_life)``: 1.0 when new, halving every half-life."""
    age = max(((now or utcnow()) - created_at).total_seconds(), 0.0)
    return float(0.5 ** (age / half_life.total_seconds()))


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity; 0.0 for vectors of different length or a zero vector."""
    if len(a) != len(b):
        return 0.0
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm > 0 else 0.0


class Memory:
    """Long-term memories (see the module docstring for scores and eviction).

    Every method takes the scope as exactly one of ``user_id=``, ``agent=`` or ``app=``;
    ``session.memory`` is bound to the session's user, so there the scope may be left out.
    """

    def __init__(
        self,
        db: DataPort,
        quality_threshold: float = 0.0,
        max_memories: int = 1000,
        embed: Embed | None = None,
        recency_half_life: timedelta = timedelta(days=30),
    ) -> None:
        self._db = db
        self.quality_threshold = check_unit(quality_threshold, "quality_threshold")
        check_limit(max_memories, "max_memories", 1, optional=False)
        self.max_memories = max_memories
        if embed is not None and not callable(embed):
            raise ValidationError(
                f"embed must be a function text -> list of floats, not {type(embed).__name__}"
            )
        self.embed = embed
        if not isinstance(recency_half_life, timedelta) or recency_half_life <= timedelta(0):
            raise ValidationError(
                f"recency_half_life must be a positive timedelta, not {recency_half_life!r}"
            )
        self.recency_half_life = recency_half_life
        self._scorer: Scorer | None = None
        self._bound: tuple[str, str] | None = None

    def __repr__(self) -> str:
        bound = f", bound to {self._bound[0]} {self._bound[1]!r}" if self._bound else ""
        return (
            f"Memory(quality_threshold={self.quality_threshold}, "
            f"max_memories={self.max_memories}{bound})"
        )

    def bind(self, scope: str, owner: str) -> Memory:
        """This memory with a default scope (``session.memory`` is bound to its user)."""
        bound = Memory(
            self._db,
            self.quality_threshold,
            self.max_memories,
            self.embed,
            self.recency_half_life,
        )
        if scope not in SCOPE_KEYWORDS.values():
            raise ValidationError(f"scope must be user, agent or app, not {scope!r}")
        bound._scorer = self._scorer
        bound._bound = (scope, check_id(owner, f"{scope} id"))
        return bound

    @property
    def _store(self) -> MemoriesStore:
        return memories_store(self._db)

    def _scope(self, user_id: str | None, agent: str | None, app: str | None) -> tuple[str, str]:
        found = check_scope(user_id, agent, app, self._bound)
        if found is None:
            raise ValidationError("pass exactly one of user_id=, agent= or app=: whose memory")
        return found

    # -- quality --------------------------------------------------------------------------
    def set_quality_scorer(self, scorer: Scorer | None) -> None:
        """Replace the default quality formula by ``scorer(item) -> float in 0..1``
        (None restores the default)."""
        if scorer is not None and not callable(scorer):
            raise ValidationError(
                f"the quality scorer must be a function item -> float in 0..1, "
                f"not {type(scorer).__name__}"
            )
        self._scorer = scorer

    def _quality(self, item: MemoryItem) -> float:
        if self._scorer is None:
            fresh = recency(item.created_at, self.recency_half_life, item.created_at)
            return (
                item.relevance * RELEVANCE_WEIGHT
                + fresh * RECENCY_WEIGHT
                + item.importance * IMPORTANCE_WEIGHT
            )
        value = self._scorer(item)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValidationError(
                f"the quality scorer returned {type(value).__name__}; it must return a "
                "number in 0..1 (fix the function given to set_quality_scorer)"
            )
        if not 0.0 <= value <= 1.0:
            raise ValidationError(
                f"the quality scorer returned {value!r}; it must return a number in 0..1 "
                "(clamp or rescale in the function given to set_quality_scorer)"
            )
        return float(value)

    # -- writes ---------------------------------------------------------------------------
    def add(
        self,
        text: str,
        *,
        user_id: str | None = None,
        agent: str | None = None,
        app: str | None = None,
        importance: float = 0.5,
        relevance: float = 0.5,
        metadata: dict[str, Any] | None = None,
        id: str | None = None,
    ) -> MemoryItem | None:
        """Store one memory for exactly one of ``user_id=``/``agent=``/``app=``.

        Returns the stored item, or None when its quality is under ``quality_threshold``
        or it ranks lowest of a full scope (the DEBUG log says which)."""
        scope, owner = self._scope(user_id, agent, app)
        item = MemoryItem(
            text=check_memory_text(text),
            scope=scope,
            owner=owner,
            importance=check_unit(importance, "importance"),
            relevance=check_unit(relevance, "relevance"),
            metadata=check_metadata(metadata),
        )
        if id is not None:
            item.id = check_id(id, "memory id")
        if self.embed is not None:
            item.embedding = check_vector(self.embed(item.text))
        item.quality = self._quality(item)
        if item.quality < self.quality_threshold:
            log.debug(
                "memory %s not stored: quality %.3f is under quality_threshold %.3f",
                item.id,
                item.quality,
                self.quality_threshold,
            )
            return None
        evicted = self._store.add_memory(item, max_items=self.max_memories)
        if evicted:
            log.debug("%s %s: evicted %d memories past max_memories", scope, owner, len(evicted))
        if item.id in evicted:
            log.debug(
                "memory %s not kept: quality %.3f is the lowest of a full scope (max_memories=%d)",
                item.id,
                item.quality,
                self.max_memories,
            )
            return None
        return item

    def delete(self, memory_id: str) -> bool:
        """Remove one memory; False when there was none."""
        return self._store.delete_memory(check_id(memory_id, "memory id"))

    def clear(
        self, *, user_id: str | None = None, agent: str | None = None, app: str | None = None
    ) -> int:
        """Remove every memory of one scope; returns how many."""
        return self._store.delete_memories(*self._scope(user_id, agent, app))

    # -- reads ----------------------------------------------------------------------------
    def get(self, memory_id: str) -> MemoryItem:
        """One memory by id (NotFound when there is none)."""
        return self._store.get_memory(check_id(memory_id, "memory id"))

    def list(
        self,
        *,
        user_id: str | None = None,
        agent: str | None = None,
        app: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[MemoryItem]:
        """One scope's memories, newest first (no scope on an unbound memory: all);
        pass ``next_cursor`` back for the next page."""
        check_limit(limit, "limit", 1, MAX_PAGE, optional=False)
        if cursor is not None:
            check_id(cursor, "cursor", 4096)
        scope, owner = check_scope(user_id, agent, app, self._bound) or (None, None)
        return self._store.list_memories(scope, owner, limit=limit, cursor=cursor)

    def count(
        self, *, user_id: str | None = None, agent: str | None = None, app: str | None = None
    ) -> int:
        """How many memories one scope holds (no scope on an unbound memory: all)."""
        scope, owner = check_scope(user_id, agent, app, self._bound) or (None, None)
        return self._store.count_memories(scope, owner)

    def search(
        self,
        query: str,
        *,
        user_id: str | None = None,
        agent: str | None = None,
        app: str | None = None,
        limit: int = 5,
    ) -> builtins.list[MemoryItem]:
        """The best ``limit`` memories of one scope for ``query``, best first, each with
        ``.score`` in 0..1 (module docstring). Nothing matching: []."""
        if not isinstance(query, str):
            raise ValidationError(f"query must be a string, not {type(query).__name__}")
        check_text(query, "query")
        check_limit(limit, "limit", 1, MAX_PAGE, optional=False)
        scope, owner = self._scope(user_id, agent, app)
        if not query.strip():
            return []
        matches = (
            self._vector_matches(scope, owner, query)
            if self.embed is not None
            else self._text_matches(scope, owner, query, limit)
        )
        now = utcnow()
        scored = []
        for item, match in matches:
            fresh = recency(item.created_at, self.recency_half_life, now)
            score = (
                match * RELEVANCE_WEIGHT
                + fresh * RECENCY_WEIGHT
                + item.importance * IMPORTANCE_WEIGHT
            )
            item.score = min(max(score, 0.0), 1.0)
            scored.append((item, match))
        scored.sort(key=lambda pair: (pair[0].score, pair[1], pair[0].created_at), reverse=True)
        return [item for item, _ in scored[:limit]]

    def _text_matches(self, scope: str, owner: str, query: str, limit: int) -> Matches:
        hits = self._store.search_memories(scope, owner, query, limit=max(4 * limit, 20))
        best = max((rank for _, rank in hits), default=0.0)
        if best <= 0:
            return [(item, 1.0) for item, _ in hits]
        return [(item, max(rank, 0.0) / best) for item, rank in hits]

    def _vector_matches(self, scope: str, owner: str, query: str) -> Matches:
        assert self.embed is not None
        wanted = check_vector(self.embed(query))
        found: Matches = []
        cursor: str | None = None
        while True:
            page = self._store.list_memories(scope, owner, limit=MAX_PAGE, cursor=cursor)
            for item in page.items:
                if item.embedding is not None:
                    similarity = cosine(wanted, item.embedding)
                    if similarity > 0:
                        found.append((item, min(similarity, 1.0)))
            cursor = page.next_cursor
            if cursor is None:
                return found


__all__ = ["Memory", "cosine", "memories_store", "recency"]
