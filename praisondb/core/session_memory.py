"""The long-term memory part of :class:`~praisondb.Session` (mixed into it).

``db.session(id, user_id="u-1", memory=True)`` binds the session to the user's
memories: ``session.memory`` is a :class:`~praisondb.core.memory.Memory` whose scope
defaults to that user, and ``session.context()`` starts with one system message (never
stored) listing the user's best memories, so a new session knows what earlier ones
learned.

Which memories: up to :data:`CONTEXT_MEMORIES` (5). First the best search matches of the
session's latest user message (the search score of :mod:`praisondb.core.memory`), then,
to fill the rest, the user's highest-quality memories (newest first among equals). With
no user message yet (a new session) that is simply the top five by quality.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ValidationError
from ..model import MemoryItem, Message
from .arguments import check_limit
from .memory import Memory

if TYPE_CHECKING:
    from .repositories import DataPort

SessionMemory = bool | Memory
"""``memory=`` of ``db.session``: True for ``db.memory()``'s defaults, or a Memory."""
CONTEXT_MEMORIES = 5
MAX_RECALL = 1000
MEMORIES_KIND = "memories"
"""``praisondb_kind`` of the context's memory message."""
_SCAN_PAGE = 1000


class MemorySession:
    """``session.memory`` and the memory message of ``session.context()``."""

    id: str
    user_id: str | None
    _db: DataPort
    _memory: Memory | None

    def _bind_memory(self, memory: SessionMemory) -> None:
        if memory is False:
            self._memory = None
            return
        if memory is True:
            memory = Memory(self._db)
        if not isinstance(memory, Memory):
            raise ValidationError(
                f"memory= must be True, False or a db.memory(...), not {type(memory).__name__}"
            )
        if self.user_id is None:
            raise ValidationError(
                f"session {self.id!r} has no user, and memories belong to a user: "
                "open it with db.session(id, user_id=..., memory=...) (True, or a db.memory(...))"
            )
        self._memory = memory.bind("user", self.user_id)

    @property
    def memory(self) -> Memory:
        """The user's long-term memories (``add``/``search``/``list`` default to the user)."""
        if self._memory is None:
            raise ValidationError(
                f"session {self.id!r} was opened without memory: open it with "
                "db.session(id, user_id=..., memory=...) (True, or a db.memory(...))"
            )
        return self._memory

    def recall(self, query: str | None = None, limit: int = CONTEXT_MEMORIES) -> list[MemoryItem]:
        """The memories ``context()`` brings (module docstring): matches of ``query`` first,
        then the highest quality. [] for a session opened without memory."""
        if query is not None and not isinstance(query, str):
            raise ValidationError(f"query must be a string or None, not {type(query).__name__}")
        check_limit(limit, "limit", 1, MAX_RECALL, optional=False)
        memory = self._memory
        if memory is None:
            return []
        chosen: dict[str, MemoryItem] = {}
        if query and query.strip():
            chosen = {m.id: m for m in memory.search(query, limit=limit)}
        if len(chosen) < limit:
            best = sorted(self._scan(memory), key=lambda m: (m.quality, m.created_at), reverse=True)
            for item in best:
                if len(chosen) >= limit:
                    break
                chosen.setdefault(item.id, item)
        return list(chosen.values())

    @staticmethod
    def _scan(memory: Memory) -> list[MemoryItem]:
        found: list[MemoryItem] = []
        cursor = None
        while len(found) < memory.max_memories:
            page = memory.list(limit=_SCAN_PAGE, cursor=cursor)
            found += page.items
            cursor = page.next_cursor
            if cursor is None:
                break
        return found

    def _memory_message(self, window: list[Message]) -> Message | None:
        if self._memory is None:
            return None
        latest = next((m for m in reversed(window) if m.role == "user"), None)
        query = latest.content if latest is not None and isinstance(latest.content, str) else None
        items = self.recall(query)
        if not items:
            return None
        lines = "\n".join(f"- {item.text}" for item in items)
        return Message(
            session_id=self.id,
            role="system",
            content=f"What you remember about this user:\n{lines}",
            metadata={"praisondb_kind": MEMORIES_KIND, "memory_ids": [m.id for m in items]},
        )


__all__ = ["CONTEXT_MEMORIES", "MemorySession", "SessionMemory"]
