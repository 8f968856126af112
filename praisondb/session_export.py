"""One session as a JSON-safe, versioned document, and back.

The document carries everything the session owns (its record, messages, runs,
spans, checkpoints and session-scoped state) with ids, seq values and timestamps
exactly as stored, so importing it elsewhere reproduces the session and importing
it twice adds nothing (messages are put by id, the rest overwritten by id).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .errors import ValidationError
from .model import Checkpoint, Message, Run, SessionInfo, Span, StateEntry
from .validation import check_id, check_json, check_message, check_metadata

if TYPE_CHECKING:
    from .facade import PraisonDB

FORMAT = "praisondb.session"
FORMAT_VERSION = 1
BATCH = 500


def _ts(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_ts(value: Any, what: str) -> datetime:
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be an ISO-8601 string, not {type(value).__name__}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"{what} is not an ISO-8601 timestamp: {value[:40]!r}") from None
    if parsed.tzinfo is None:
        raise ValidationError(f"{what} must carry a timezone: {value[:40]!r}")
    return parsed


def _opt_ts(value: Any, what: str) -> datetime | None:
    return None if value is None else _parse_ts(value, what)


def info_to_dict(info: SessionInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "user_id": info.user_id,
        "agent": info.agent,
        "title": info.title,
        "metadata": info.metadata,
        "parent_id": info.parent_id,
        "forked_at_seq": info.forked_at_seq,
        "created_at": _ts(info.created_at),
        "updated_at": _ts(info.updated_at),
        "message_count": info.message_count,
        "last_seq": info.last_seq,
    }


def message_to_dict(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "seq": message.seq,
        "role": message.role,
        "content": message.content,
        "metadata": message.metadata,
        "run_id": message.run_id,
        "created_at": _ts(message.created_at),
    }


def run_to_dict(run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "model": run.model,
        "status": run.status,
        "input_tokens": run.input_tokens,
        "output_tokens": run.output_tokens,
        "started_at": _ts(run.started_at),
        "ended_at": _ts(run.ended_at),
        "error": run.error,
        "metadata": run.metadata,
    }


def span_to_dict(span: Span) -> dict[str, Any]:
    return {
        "id": span.id,
        "trace_id": span.trace_id,
        "parent_id": span.parent_id,
        "name": span.name,
        "user_id": span.user_id,
        "status": span.status,
        "attributes": span.attributes,
        "started_at": _ts(span.started_at),
        "ended_at": _ts(span.ended_at),
    }


def checkpoint_to_dict(checkpoint: Checkpoint) -> dict[str, Any]:
    return {
        "id": checkpoint.id,
        "seq": checkpoint.seq,
        "label": checkpoint.label,
        "state": checkpoint.state,
        "created_at": _ts(checkpoint.created_at),
    }


def entry_to_dict(entry: StateEntry) -> dict[str, Any]:
    return {
        "key": entry.key,
        "value": entry.value,
        "version": entry.version,
        "expires_at": _ts(entry.expires_at),
        "updated_at": _ts(entry.updated_at),
    }


def export_session(db: PraisonDB, session_id: str) -> dict[str, Any]:
    """The whole session as plain JSON data (``orjson.dumps`` can write it as is)."""
    info = db.sessions.get(session_id)
    scope = f"session:{info.id}"
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "session": info_to_dict(info),
        "messages": [message_to_dict(m) for m in db.messages.iterate(info.id)],
        "runs": [run_to_dict(r) for r in db.runs.list(info.id)],
        "spans": [span_to_dict(s) for s in db.conversations.list_spans(session_id=info.id)],
        "checkpoints": [checkpoint_to_dict(c) for c in db.checkpoints.list(info.id)],
        "state": [entry_to_dict(e) for e in db.state_store.list_entries(scope)],
    }


def _items(data: dict[str, Any], name: str) -> list[dict[str, Any]]:
    items = data.get(name, [])
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ValidationError(f"session document: {name!r} must be a list of objects")
    return items


def _batches(items: list[Message]) -> Iterator[list[Message]]:
    for start in range(0, len(items), BATCH):
        yield items[start : start + BATCH]


def import_session(db: PraisonDB, data: dict[str, Any]) -> SessionInfo:
    """Write an exported session into ``db``, keeping ids, seq and timestamps; idempotent."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValidationError(f"not a {FORMAT} document")
    if data.get("version") != FORMAT_VERSION:
        raise ValidationError(
            f"session document version {data.get('version')!r} is not supported "
            f"(this praisondb reads version {FORMAT_VERSION})"
        )
    raw = data.get("session")
    if not isinstance(raw, dict):
        raise ValidationError("session document has no 'session' object")
    try:
        session_id = check_id(raw["id"])
        info = SessionInfo(
            id=session_id,
            user_id=raw.get("user_id"),
            agent=raw.get("agent"),
            title=raw.get("title"),
            metadata=check_metadata(raw.get("metadata")),
            parent_id=raw.get("parent_id"),
            forked_at_seq=raw.get("forked_at_seq"),
            created_at=_parse_ts(raw["created_at"], "session created_at"),
            updated_at=_parse_ts(raw["updated_at"], "session updated_at"),
            message_count=int(raw.get("message_count", 0)),
            last_seq=int(raw.get("last_seq", 0)),
        )
        messages = [
            check_message(
                Message(
                    session_id=session_id,
                    role=m["role"],
                    content=m["content"],
                    metadata=m.get("metadata") or {},
                    run_id=m.get("run_id"),
                    id=m["id"],
                    seq=int(m["seq"]),
                    created_at=_parse_ts(m["created_at"], "message created_at"),
                )
            )
            for m in _items(data, "messages")
        ]
        runs = [
            Run(
                session_id=session_id,
                id=check_id(r["id"], "run id"),
                model=r.get("model"),
                status=r.get("status", "completed"),
                input_tokens=int(r.get("input_tokens") or 0),
                output_tokens=int(r.get("output_tokens") or 0),
                started_at=_parse_ts(r["started_at"], "run started_at"),
                ended_at=_opt_ts(r.get("ended_at"), "run ended_at"),
                error=r.get("error"),
                metadata=check_metadata(r.get("metadata")),
            )
            for r in _items(data, "runs")
        ]
        spans = [
            Span(
                trace_id=check_id(s["trace_id"], "trace id"),
                name=s["name"],
                id=check_id(s["id"], "span id"),
                parent_id=s.get("parent_id"),
                session_id=session_id,
                user_id=s.get("user_id"),
                status=s.get("status", "ok"),
                attributes=check_metadata(s.get("attributes"), "span attributes"),
                started_at=_parse_ts(s["started_at"], "span started_at"),
                ended_at=_opt_ts(s.get("ended_at"), "span ended_at"),
            )
            for s in _items(data, "spans")
        ]
        checkpoints = [
            Checkpoint(
                session_id=session_id,
                seq=int(c["seq"]),
                state=check_metadata(c.get("state"), "checkpoint state"),
                label=c.get("label"),
                id=check_id(c["id"], "checkpoint id"),
                created_at=_parse_ts(c["created_at"], "checkpoint created_at"),
            )
            for c in _items(data, "checkpoints")
        ]
        scope = f"session:{session_id}"
        entries = []
        for e in _items(data, "state"):
            check_json(e.get("value"), "state value")
            entries.append(
                StateEntry(
                    scope,
                    check_id(e["key"], "state key"),
                    e.get("value"),
                    int(e.get("version") or 1),
                    _opt_ts(e.get("expires_at"), "state expires_at"),
                    _parse_ts(e["updated_at"], "state updated_at"),
                )
            )
    except (KeyError, TypeError) as exc:
        raise ValidationError(f"session document is missing or mistypes a field: {exc}") from None
    store = db.conversations
    store.put_session(info)
    for batch in _batches(messages):
        store.put_messages(session_id, batch)
    for run in runs:
        store.save_run(run)
    for span in spans:
        store.save_span(span)
    for checkpoint in checkpoints:
        store.save_checkpoint(checkpoint)
    if entries:
        db.state_store.put_entries(entries)
    return db.sessions.get(session_id)
