"""How the JSON-files store writes each model object as one JSON object, and reads it back.

Timestamps are ISO-8601 strings with microseconds and an offset; reads return aware
UTC datetimes. Field names are spelled out so the files stay readable by hand and
by tools such as ``jq``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..model import Checkpoint, Message, Run, SessionInfo, Span, StateEntry
from .jsonfiles_io import dump_dt, dump_opt_dt, load_dt, load_opt_dt

FORMAT_VERSION = 1


@dataclass(slots=True)
class SessionHead:
    """The small per-session file: the session itself plus where its message log ends.

    ``log`` names the current message log (``messages-<log>.jsonl``); a rewrite
    (delete or out-of-order import) writes a new log under a new name and switches
    to it with one atomic replace of this file. ``log_size`` is the byte length of
    the log that the counters account for; a longer log means a writer died after
    appending and before updating this file, and the difference is recounted.
    """

    info: SessionInfo
    log: str
    log_size: int = 0


def head_to_json(head: SessionHead) -> dict[str, Any]:
    info = head.info
    return {
        "format": FORMAT_VERSION,
        "id": info.id,
        "user_id": info.user_id,
        "agent": info.agent,
        "title": info.title,
        "metadata": info.metadata,
        "parent_id": info.parent_id,
        "forked_at_seq": info.forked_at_seq,
        "created_at": dump_dt(info.created_at),
        "updated_at": dump_dt(info.updated_at),
        "message_count": info.message_count,
        "last_seq": info.last_seq,
        "log": head.log,
        "log_size": head.log_size,
    }


def head_from_json(data: dict[str, Any]) -> SessionHead:
    info = SessionInfo(
        id=data["id"],
        user_id=data.get("user_id"),
        agent=data.get("agent"),
        title=data.get("title"),
        metadata=data.get("metadata") or {},
        parent_id=data.get("parent_id"),
        forked_at_seq=data.get("forked_at_seq"),
        created_at=load_dt(data["created_at"]),
        updated_at=load_dt(data["updated_at"]),
        message_count=int(data.get("message_count", 0)),
        last_seq=int(data.get("last_seq", 0)),
    )
    return SessionHead(info, str(data["log"]), int(data.get("log_size", 0)))


def message_to_json(message: Message) -> dict[str, Any]:
    """``id`` comes first: the id index reads it without parsing the whole line."""
    return {
        "id": message.id,
        "seq": message.seq,
        "role": message.role,
        "content": message.content,
        "metadata": message.metadata,
        "run_id": message.run_id,
        "created_at": dump_dt(message.created_at),
    }


def is_message_record(data: dict[str, Any]) -> bool:
    return (
        isinstance(data.get("id"), str)
        and isinstance(data.get("seq"), int)
        and isinstance(data.get("role"), str)
        and isinstance(data.get("created_at"), str)
        and "content" in data
    )


def message_from_json(session_id: str, data: dict[str, Any]) -> Message:
    return Message(
        session_id=session_id,
        role=data["role"],
        content=data["content"],
        metadata=data.get("metadata") or {},
        run_id=data.get("run_id"),
        id=data["id"],
        seq=data["seq"],
        created_at=load_dt(data["created_at"]),
    )


def run_to_json(run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "session_id": run.session_id,
        "model": run.model,
        "status": run.status,
        "input_tokens": run.input_tokens,
        "output_tokens": run.output_tokens,
        "started_at": dump_dt(run.started_at),
        "ended_at": dump_opt_dt(run.ended_at),
        "error": run.error,
        "metadata": run.metadata,
    }


def run_from_json(data: dict[str, Any]) -> Run:
    return Run(
        session_id=data["session_id"],
        id=data["id"],
        model=data.get("model"),
        status=data.get("status", "running"),
        input_tokens=int(data.get("input_tokens", 0)),
        output_tokens=int(data.get("output_tokens", 0)),
        started_at=load_dt(data["started_at"]),
        ended_at=load_opt_dt(data.get("ended_at")),
        error=data.get("error"),
        metadata=data.get("metadata") or {},
    )


def span_to_json(span: Span) -> dict[str, Any]:
    return {
        "id": span.id,
        "trace_id": span.trace_id,
        "name": span.name,
        "parent_id": span.parent_id,
        "session_id": span.session_id,
        "user_id": span.user_id,
        "status": span.status,
        "attributes": span.attributes,
        "started_at": dump_dt(span.started_at),
        "ended_at": dump_opt_dt(span.ended_at),
    }


def span_from_json(data: dict[str, Any]) -> Span:
    return Span(
        trace_id=data["trace_id"],
        name=data["name"],
        id=data["id"],
        parent_id=data.get("parent_id"),
        session_id=data.get("session_id"),
        user_id=data.get("user_id"),
        status=data.get("status", "running"),
        attributes=data.get("attributes") or {},
        started_at=load_dt(data["started_at"]),
        ended_at=load_opt_dt(data.get("ended_at")),
    )


def checkpoint_to_json(checkpoint: Checkpoint) -> dict[str, Any]:
    return {
        "id": checkpoint.id,
        "session_id": checkpoint.session_id,
        "seq": checkpoint.seq,
        "state": checkpoint.state,
        "label": checkpoint.label,
        "created_at": dump_dt(checkpoint.created_at),
    }


def checkpoint_from_json(data: dict[str, Any]) -> Checkpoint:
    return Checkpoint(
        session_id=data["session_id"],
        seq=data["seq"],
        state=data.get("state") or {},
        label=data.get("label"),
        id=data["id"],
        created_at=load_dt(data["created_at"]),
    )


def entry_to_json(entry: StateEntry) -> dict[str, Any]:
    return {
        "scope": entry.scope,
        "key": entry.key,
        "value": entry.value,
        "version": entry.version,
        "expires_at": dump_opt_dt(entry.expires_at),
        "updated_at": dump_dt(entry.updated_at),
    }


def entry_from_json(data: dict[str, Any]) -> StateEntry:
    return StateEntry(
        scope=data["scope"],
        key=data["key"],
        value=data.get("value"),
        version=int(data["version"]),
        expires_at=load_opt_dt(data.get("expires_at")),
        updated_at=load_dt(data["updated_at"]),
    )
