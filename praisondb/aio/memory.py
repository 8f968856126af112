"""``AsyncMemory``: the async face of :class:`praisondb.core.memory.Memory`.

Every method is the sync one, bridged (the quality scorer and ``embed`` run there too,
as plain functions); ``set_quality_scorer`` does no I/O and is called as it is.
"""

from __future__ import annotations

from ..core.memory import Memory
from .face import Face, awaited, direct


class AsyncMemory(Face[Memory]):
    """``db.memory(...)``/``session.memory``, awaited."""

    __slots__ = ()
    add = awaited(Memory.add)
    search = awaited(Memory.search)
    list = awaited(Memory.list)
    get = awaited(Memory.get)
    delete = awaited(Memory.delete)
    clear = awaited(Memory.clear)
    count = awaited(Memory.count)
    set_quality_scorer = direct(Memory.set_quality_scorer)

    def bind(self, scope: str, owner: str) -> AsyncMemory:
        """This memory with a default scope (``user``, ``agent`` or ``app`` and its id)."""
        return AsyncMemory(self._sync.bind(scope, owner), self._runner)

    @property
    def quality_threshold(self) -> float:
        return self._sync.quality_threshold

    @property
    def max_memories(self) -> int:
        return self._sync.max_memories

    @property
    def embed(self) -> object:
        return self._sync.embed

    @property
    def recency_half_life(self) -> object:
        return self._sync.recency_half_life


__all__ = ["AsyncMemory"]
