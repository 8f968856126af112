"""What a transfer moves: the selection, the sessions it yields in a stable order, the
argument checks and counts that copy, export, import and verify share."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..errors import NotFound, ValidationError
from ..model import SessionInfo
from ..stores.base import ConversationStore, SessionQuery, session_cursor
from ._endpoints import open_endpoint
from ._reports import StateMode, TransferReport
from .archive import iso

DEFAULT_BATCH_SIZE = 1000
SESSION_PAGE = 200


@dataclass(frozen=True)
class Selection:
    """Which sessions move: explicit ids, or filters on user, agent and ``updated_at``."""

    sessions: tuple[str, ...] | None = None
    user_id: str | None = None
    agent: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    @property
    def filtered(self) -> bool:
        return any(
            v is not None for v in (self.sessions, self.user_id, self.agent, self.since, self.until)
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "sessions": list(self.sessions) if self.sessions is not None else None,
            "user_id": self.user_id,
            "agent": self.agent,
            "since": iso(self.since) if self.since else None,
            "until": iso(self.until) if self.until else None,
        }

    def matches(self, info: SessionInfo, lower: datetime | None) -> bool:
        return (
            (self.user_id is None or info.user_id == self.user_id)
            and (self.agent is None or info.agent == self.agent)
            and (lower is None or info.updated_at >= lower)
            and (self.until is None or info.updated_at < self.until)
        )


Position = str | int | None
"""Where a listing resumes: a keyset cursor, or how many explicit ids are done."""


def iter_sessions(
    store: ConversationStore,
    selection: Selection,
    lower: datetime | None,
    position: Position = None,
    notes: list[str] | None = None,
) -> Iterator[tuple[SessionInfo, Position]]:
    """Matching sessions in a stable order, each with the position just after it."""
    if selection.sessions is not None:
        start = position if isinstance(position, int) else 0
        for index in range(start, len(selection.sessions)):
            sid = selection.sessions[index]
            try:
                info = store.get_session(sid)
            except NotFound:
                if notes is not None:
                    notes.append(f"session {sid!r} is not in the source")
                continue
            if selection.matches(info, lower):
                yield info, index + 1
        return
    cursor = position if isinstance(position, str) else None
    while True:
        page = store.list_sessions(
            SessionQuery(
                user_id=selection.user_id,
                agent=selection.agent,
                updated_after=lower,
                updated_before=selection.until,
                limit=SESSION_PAGE,
                cursor=cursor,
            )
        )
        for info in page.items:
            yield info, session_cursor(info)
        if not page.next_cursor:
            return
        cursor = page.next_cursor


def plan(
    source: Any,
    *,
    sessions: list[str] | None = None,
    user_id: str | None = None,
    agent: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    source_options: dict[str, Any] | None = None,
) -> tuple[int, int]:
    """(sessions, messages) the selection holds, from session records alone (cheap)."""
    selection = make_selection(sessions, user_id, agent, since, until)
    with open_endpoint(source, source_options) as src:
        return count_totals(src.conversations, selection, since)


def count_totals(
    store: ConversationStore, selection: Selection, lower: datetime | None
) -> tuple[int, int]:
    count = messages = 0
    for info, _ in iter_sessions(store, selection, lower):
        count += 1
        messages += info.message_count
    return count, messages


def make_selection(
    sessions: list[str] | tuple[str, ...] | None,
    user_id: str | None,
    agent: str | None,
    since: datetime | None,
    until: datetime | None,
) -> Selection:
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and moment.tzinfo is None:
            raise ValidationError(f"{name} must be timezone-aware")
    return Selection(
        tuple(sessions) if sessions is not None else None, user_id, agent, since, until
    )


def check_common(batch_size: int, workers: int, on_conflict: str, state: str) -> None:
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValidationError(f"batch_size must be a positive integer, not {batch_size!r}")
    if not isinstance(workers, int) or workers < 1:
        raise ValidationError(f"workers must be a positive integer, not {workers!r}")
    if on_conflict not in ("skip", "overwrite", "fail"):
        raise ValidationError(f"on_conflict must be skip, overwrite or fail, not {on_conflict!r}")
    if state not in ("auto", "all", "none"):
        raise ValidationError(f"state must be auto, all or none, not {state!r}")


def state_plan(state: StateMode, selection: Selection) -> tuple[bool, bool]:
    """(copy every scope, copy what the selected sessions read: see :func:`shared_scopes`)."""
    if state == "none":
        return False, False
    if state == "all" or not selection.filtered:
        return True, False
    return False, True


def shared_scopes(selection: Selection, users: set[str]) -> list[str]:
    """The scopes a filtered transfer brings along besides each session's own
    (``session:<id>``): ``app`` and ``user:<id>`` of every selected session's user.

    That is everything a session reads through praisondb and the framework faces (ADK's
    ``app:``/``user:`` state, PraisonAI's user memory), so a session copied alone resumes
    on the target as it was. Other sessions' and other users' scopes stay behind.
    """
    found = set(users)
    if selection.user_id is not None:
        found.add(selection.user_id)
    return ["app", *(f"user:{user}" for user in sorted(found))]


def noting_users(
    items: Iterator[tuple[SessionInfo, Position]], users: set[str]
) -> Iterator[tuple[SessionInfo, Position]]:
    """``items`` unchanged, each session's user added to ``users`` as it passes."""
    for info, position in items:
        if info.user_id is not None:
            users.add(info.user_id)
        yield info, position


def as_int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def counted(
    items: Iterator[tuple[SessionInfo, Position]], report: TransferReport
) -> Iterator[tuple[SessionInfo, Position]]:
    for item in items:
        report.sessions_seen += 1
        yield item
