"""Small pieces several stores share, so each rule is written once.

Stores that hold sessions in memory or files (memory, JSON files) filter, sort and page
them here; every store keeps "the newest N, oldest first" the same way.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from ..errors import Conflict
from ..model import Page, SessionInfo, StateEntry
from .base import SessionQuery, decode_session_cursor, session_cursor

T = TypeVar("T")


def session_matches(info: SessionInfo, query: SessionQuery) -> bool:
    """Whether a session passes the query's filters (not its cursor or limit)."""
    return (
        (query.user_id is None or info.user_id == query.user_id)
        and (query.agent is None or info.agent == query.agent)
        and (query.parent_id is None or info.parent_id == query.parent_id)
        and id_matches(info.id, query.id_prefix, query.exclude_id_prefix)
        and (query.updated_after is None or info.updated_at >= query.updated_after)
        and (query.updated_before is None or info.updated_at < query.updated_before)
    )


def id_matches(value: str, prefix: str | None, excluded: str | None) -> bool:
    """Whether an id is inside ``prefix`` and outside ``excluded`` (empty or None: no bound)."""
    return (not prefix or value.startswith(prefix)) and not (
        excluded and value.startswith(excluded)
    )


def mongo_id_range(prefix: str | None, excluded: str | None) -> dict[str, Any] | None:
    """The ``_id`` condition of :func:`id_matches` for MongoDB: ranges on the ``_id``
    index (``$gte``/``$lt``, the excluded range under ``$not``), no regex to escape."""
    bounds: dict[str, Any] = {}
    if prefix:
        upper = prefix_upper_bound(prefix)
        bounds["$gte"] = prefix
        if upper is not None:
            bounds["$lt"] = upper
    if excluded:
        upper = prefix_upper_bound(excluded)
        bounds["$not"] = {"$gte": excluded, **({} if upper is None else {"$lt": upper})}
    return bounds or None


def select_sessions(sessions: Iterable[SessionInfo], query: SessionQuery) -> list[SessionInfo]:
    """The matching sessions, newest-created first, ties broken by id (the listing order)."""
    found = [s for s in sessions if session_matches(s, query)]
    found.sort(key=lambda s: (s.created_at, s.id), reverse=True)
    return found


def page_sessions(found: list[SessionInfo], query: SessionQuery) -> Page[SessionInfo]:
    """One page of :func:`select_sessions`' result, after the query's keyset cursor."""
    if query.cursor:
        cursor = decode_session_cursor(query.cursor)
        found = [s for s in found if (s.created_at, s.id) < cursor]
    items = found[: query.limit]
    more = len(found) > query.limit
    return Page(items, session_cursor(items[-1]) if more and items else None)


def chunks(items: Sequence[T], size: int = 500) -> Iterable[Sequence[T]]:
    """``items`` in slices of ``size``: one statement's worth of rows, or of keys."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def newest(items: list[T], limit: int | None) -> list[T]:
    """The last ``limit`` items (all of them for None), keeping their order."""
    return items if limit is None else items[-limit:] if limit > 0 else []


def version_conflict(scope: str, key: str, actual: int, expected: int | None) -> Conflict:
    """A compare-and-set refused, worded the same on every store."""
    return Conflict(
        f"state {scope}/{key} is at version {actual}, expected {expected}: "
        "re-read it and decide again"
    )


def check_version(scope: str, key: str, current: StateEntry | None, expected: int | None) -> None:
    """Raise :func:`version_conflict` unless the live entry is at ``expected`` (0: absent)."""
    if expected is None:
        return
    actual = current.version if current else 0
    if actual != expected:
        raise version_conflict(scope, key, actual, expected)


def prefix_upper_bound(prefix: str) -> str | None:
    """The smallest string greater than every string starting with ``prefix``.

    Lets a prefix search be an index range (``key >= prefix AND key < bound``) with no
    LIKE wildcards to escape (SQL), or a ZRANGEBYLEX bound (Redis); valid because every
    backend compares keys by code point (UTF-8 bytes sort the same way).
    """
    chars = list(prefix)
    while chars:
        code = ord(chars[-1]) + 1
        if code == 0xD800:
            code = 0xE000  # skip the surrogate block: it cannot be stored
        if code <= 0x10FFFF:
            chars[-1] = chr(code)
            return "".join(chars)
        chars.pop()
    return None


def scan_sorted_keys(
    keys: Sequence[str],
    scope: str,
    prefix: str,
    after: tuple[str, str] | None,
    limit: int | None,
    read: Callable[[str], StateEntry | None],
) -> list[StateEntry]:
    """One scope's live entries from its sorted key list: those under ``prefix`` after the
    ``(scope, key)`` cursor, up to ``limit``; ``read`` gives a key's live entry or None
    (expired or gone), so only the entries returned are read."""
    at = bisect.bisect_left(keys, prefix)
    if after is not None:
        if after[0] > scope:
            return []
        if after[0] == scope:
            at = max(at, bisect.bisect_right(keys, after[1]))
    found: list[StateEntry] = []
    while at < len(keys) and (limit is None or len(found) < limit):
        key = keys[at]
        if not key.startswith(prefix):
            break
        entry = read(key)
        if entry is not None:
            found.append(entry)
        at += 1
    return found
