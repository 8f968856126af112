"""Long-term memories in copy, export, import and verify.

Which memories move: every memory when the transfer selects every session; with a
filter (sessions, user, agent, time), the memories of the selected sessions' users
(``user`` scope), so a user copied alone keeps what praisondb remembered about them.
Memories are written with ``put_memories`` exactly as they are (id, quality, created_at,
embedding): idempotent, and a memory already equal on the target is not rewritten.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from ..codec import to_record
from ..model import MemoryItem
from ..stores.base import MemoriesStore
from ._plan import Selection
from ._reports import Tracker, VerifyReport

Scope = tuple[str | None, str | None]


def memories_of(store: Any) -> MemoriesStore | None:
    """The store's memories, or None for a store that keeps none."""
    return store if callable(getattr(store, "put_memories", None)) else None


def memory_scopes(selection: Selection, users: Iterable[str]) -> list[Scope]:
    """``[(None, None)]`` (every memory) unfiltered; else each selected user's scope."""
    if not selection.filtered:
        return [(None, None)]
    found = set(users)
    if selection.user_id is not None:
        found.add(selection.user_id)
    return [("user", user) for user in sorted(found)]


def iter_memories(
    store: MemoriesStore, scopes: list[Scope], batch_size: int
) -> Iterator[list[MemoryItem]]:
    """The memories of ``scopes`` in pages of ``batch_size``."""
    for scope, owner in scopes:
        cursor: str | None = None
        while True:
            page = store.list_memories(scope, owner, limit=batch_size, cursor=cursor)
            if page.items:
                yield page.items
            cursor = page.next_cursor
            if cursor is None:
                break


def spelled(item: MemoryItem) -> dict[str, Any]:
    """What two copies of a memory must agree on (all but a search score)."""
    record = to_record(item)
    record.pop("score", None)
    return record


def differing(target: MemoriesStore | None, items: list[MemoryItem]) -> list[MemoryItem]:
    """The items ``target`` lacks or holds otherwise."""
    if target is None:
        return list(items)
    return [item for item in items if _problem(item, target) is not None]


def _problem(item: MemoryItem, target: MemoriesStore) -> str | None:
    from ..errors import NotFound

    try:
        theirs = target.get_memory(item.id)
    except NotFound:
        return f"memory {item.id} ({item.scope} {item.owner}) is missing"
    ours, other = spelled(item), spelled(theirs)
    changed = sorted(k for k in ours if ours[k] != other.get(k))
    return f"memory {item.id} differs in {', '.join(changed)}" if changed else None


def copy_memories(
    source: Any,
    target: Any,
    scopes: list[Scope],
    batch_size: int,
    tracker: Tracker,
    *,
    dry_run: bool,
) -> None:
    """Write the memories of ``scopes`` the target lacks (or holds otherwise)."""
    src, tgt = memories_of(source), memories_of(target)
    if src is None:
        return
    if tgt is None:
        tracker.report.notes.append("the target keeps no long-term memories; none copied")
        return
    for batch in iter_memories(src, scopes, batch_size):
        changed = differing(tgt, batch)
        if changed and not dry_run:
            tgt.put_memories(changed)
        tracker.add(memories_copied=len(changed))


def write_memories(
    target: Any, items: list[MemoryItem], tracker: Tracker, *, dry_run: bool
) -> None:
    """An import's batch of memories, those not already equal on the target."""
    tgt = memories_of(target)
    if tgt is None:
        if items:
            tracker.report.notes.append("the target keeps no long-term memories; none imported")
        return
    changed = differing(tgt, items)
    if changed and not dry_run:
        tgt.put_memories(changed)
    tracker.add(memories_copied=len(changed))


def check_memories(items: Iterable[MemoryItem], target: Any, report: VerifyReport) -> None:
    """Count each of ``items`` as checked and note every one the target lacks or changed."""
    tgt = memories_of(target)
    for item in items:
        report.memories_checked += 1
        problem = f"memory {item.id} is missing" if tgt is None else _problem(item, tgt)
        if problem is not None:
            report.add_memory_difference(problem)


def compare_memories(
    source: Any, target: Any, scopes: list[Scope], batch_size: int, report: VerifyReport
) -> None:
    src = memories_of(source)
    if src is None:
        return
    for batch in iter_memories(src, scopes, batch_size):
        check_memories(batch, target, report)


__all__ = [
    "check_memories",
    "compare_memories",
    "copy_memories",
    "iter_memories",
    "memories_of",
    "memory_scopes",
    "write_memories",
]
