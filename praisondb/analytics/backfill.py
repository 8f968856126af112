"""Backfill: load conversations that already exist in a store into ClickHouse, idempotently.

Every source record maps to one event with a natural key: ``session_start`` per
session, ``message`` per (session, seq), ``run`` per (session, end time to the
millisecond, the precision every store keeps). Before a page
of sessions is inserted, the keys already in ClickHouse are read back and skipped, so
re-running a backfill adds nothing, and events the live logger already recorded are
not duplicated either. Event ids are derived from the source ids (UUIDv5), so even a
concurrent double run is caught by the sink's id checks on replay.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..core.events import message_event
from ..model import Event, Message, Run, SessionInfo
from ..stores.base import ConversationStore, SessionQuery

if TYPE_CHECKING:
    from ..stores.clickhouse import ClickHouseSink

_NAMESPACE = uuid.UUID("6f1c1f53-3d5e-4a55-9a3c-0c8f6a1d2b7e")
PAGE = 200
MESSAGE_PAGE = 2000

Key = tuple[str, str, int]


@dataclass
class BackfillResult:
    sessions: int = 0
    inserted: int = 0
    skipped: int = 0


def _event_id(kind: str, source_id: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{kind}:{source_id}"))


def _micros(ts: datetime) -> int:
    stamp = ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)
    return round(stamp.timestamp() * 1_000_000)


def _chars(message: Message) -> int:
    content = message.content
    if isinstance(content, str):
        return len(content)
    return sum(len(str(block.get("text", ""))) for block in content)


def session_events(
    info: SessionInfo, messages: list[Message], runs: list[Run]
) -> list[tuple[Key, Event]]:
    """The events a session would have produced live, each with its natural key."""
    user, agent = info.user_id or "", info.agent or ""
    events: list[tuple[Key, Event]] = [
        (
            ("session_start", info.id, 0),
            Event(
                "session_start",
                ts=info.created_at,
                session_id=info.id,
                user_id=user,
                agent=agent,
                id=_event_id("session", info.id),
            ),
        )
    ]
    for message in messages:
        labelled = message_event(message)  # the writing agent and tool name, as live events
        events.append(
            (
                ("message", info.id, message.seq),
                Event(
                    "message",
                    ts=message.created_at,
                    session_id=info.id,
                    user_id=user,
                    agent=agent,
                    role=message.role,
                    tool=labelled.tool,
                    attributes={**labelled.attributes, "chars": _chars(message)},
                    id=_event_id("message", message.id),
                ),
            )
        )
    for run in runs:
        if run.ended_at is None:
            continue
        events.append(
            (
                ("run", info.id, _micros(run.ended_at) // 1000),
                Event(
                    "run",
                    ts=run.ended_at,
                    session_id=info.id,
                    user_id=user,
                    agent=agent,
                    model=run.model or "",
                    input_tokens=run.input_tokens,
                    output_tokens=run.output_tokens,
                    latency_ms=(run.ended_at - run.started_at).total_seconds() * 1000,
                    status=run.status,
                    attributes={"error": run.error} if run.error else {},
                    id=_event_id("run", run.id),
                ),
            )
        )
    return events


def _messages(source: ConversationStore, session_id: str) -> Iterator[Message]:
    after = 0
    while True:
        page = source.list_messages(session_id, after_seq=after, limit=MESSAGE_PAGE)
        yield from page
        if len(page) < MESSAGE_PAGE:
            return
        after = page[-1].seq


def _sessions(source: ConversationStore, since: datetime | None) -> Iterator[list[SessionInfo]]:
    cursor: str | None = None
    while True:
        page = source.list_sessions(SessionQuery(updated_after=since, limit=PAGE, cursor=cursor))
        if page.items:
            yield page.items
        if not page.next_cursor:
            return
        cursor = page.next_cursor


def existing_keys(sink: ClickHouseSink, session_ids: list[str]) -> set[Key]:
    """Natural keys of the events ClickHouse already holds for these sessions."""
    _, rows = sink.run_query(
        "SELECT type, session_id, "
        "if(type = 'message', JSONExtractInt(attributes, 'seq'), "
        "if(type = 'run', toUnixTimestamp64Milli(ts), 0)) AS k "
        "FROM {db:Identifier}.{t:Identifier} "
        "WHERE session_id IN {ids:Array(String)} AND type IN ('session_start', 'message', 'run')",
        {"db": sink.layout.database, "t": "events", "ids": session_ids},
    )
    return {(str(r[0]), str(r[1]), int(r[2])) for r in rows}


def backfill(
    sink: ClickHouseSink,
    source: ConversationStore,
    *,
    since: datetime | None = None,
    progress: Callable[[BackfillResult], Any] | None = None,
) -> BackfillResult:
    """Load every session updated since ``since`` (all when None); safe to run again."""
    sink.ensure_schema()
    result = BackfillResult()
    for page in _sessions(source, since):
        candidates: list[tuple[Key, Event]] = []
        for info in page:
            candidates.extend(
                session_events(info, list(_messages(source, info.id)), source.list_runs(info.id))
            )
        stored = existing_keys(sink, [info.id for info in page])
        fresh = [event for key, event in candidates if key not in stored]
        sink.insert_now(fresh)
        result.sessions += len(page)
        result.inserted += len(fresh)
        result.skipped += len(candidates) - len(fresh)
        if progress is not None:
            progress(result)
    return result
