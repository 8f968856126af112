"""Records of the praisondb archive: one spelling per value, checked on the way in.

The canonical message bytes here are also what ``praisondb verify`` digests, so an
archive and a live store are compared by the same rules.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Any

import orjson

from .errors import ValidationError
from .model import Checkpoint, Message, Run, SessionInfo, Span, StateEntry
from .validation import check_id, check_json, check_message, check_metadata, check_scope


class ArchiveError(ValidationError):
    """The file is not an archive this praisondb can read, or it is damaged."""


# -- canonical forms -----------------------------------------------------------------


def iso(value: datetime) -> str:
    """UTC, always six fractional digits: one spelling per instant, so digests are stable.

    A naive datetime keeps no offset, so a store that loses the timezone shows up in
    a digest instead of being silently "fixed".
    """
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc)
    return value.isoformat(timespec="microseconds")


def canonical_message(message: Message) -> bytes:
    """The bytes a message's digest is made of (ids, seq, content, metadata, timestamp)."""
    return orjson.dumps(
        {
            "id": message.id,
            "seq": message.seq,
            "role": message.role,
            "content": message.content,
            "metadata": message.metadata,
            "run_id": message.run_id,
            "created_at": iso(message.created_at),
        },
        option=orjson.OPT_SORT_KEYS,
    )


class MessageDigest:
    """A running sha256 over canonical messages, one per line."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.count = 0
        self.last_seq = 0

    def add(self, message: Message, canonical: bytes | None = None) -> None:
        self._hash.update(canonical if canonical is not None else canonical_message(message))
        self._hash.update(b"\n")
        self.count += 1
        self.last_seq = message.seq

    def hexdigest(self) -> str:
        return "sha256:" + self._hash.hexdigest()


# -- records <-> model ---------------------------------------------------------------


def _opt_iso(value: datetime | None) -> str | None:
    return None if value is None else iso(value)


def session_record(info: SessionInfo) -> dict[str, Any]:
    return {
        "type": "session",
        "id": info.id,
        "user_id": info.user_id,
        "agent": info.agent,
        "title": info.title,
        "metadata": info.metadata,
        "parent_id": info.parent_id,
        "forked_at_seq": info.forked_at_seq,
        "created_at": iso(info.created_at),
        "updated_at": iso(info.updated_at),
        "message_count": info.message_count,
        "last_seq": info.last_seq,
    }


def message_record(message: Message) -> dict[str, Any]:
    return {
        "type": "message",
        "session_id": message.session_id,
        "id": message.id,
        "seq": message.seq,
        "role": message.role,
        "content": message.content,
        "metadata": message.metadata,
        "run_id": message.run_id,
        "created_at": iso(message.created_at),
    }


def run_record(run: Run) -> dict[str, Any]:
    return {
        "type": "run",
        "id": run.id,
        "session_id": run.session_id,
        "model": run.model,
        "status": run.status,
        "input_tokens": run.input_tokens,
        "output_tokens": run.output_tokens,
        "started_at": iso(run.started_at),
        "ended_at": _opt_iso(run.ended_at),
        "error": run.error,
        "metadata": run.metadata,
    }


def checkpoint_record(checkpoint: Checkpoint) -> dict[str, Any]:
    return {
        "type": "checkpoint",
        "id": checkpoint.id,
        "session_id": checkpoint.session_id,
        "seq": checkpoint.seq,
        "state": checkpoint.state,
        "label": checkpoint.label,
        "created_at": iso(checkpoint.created_at),
    }


def span_record(span: Span) -> dict[str, Any]:
    return {
        "type": "span",
        "id": span.id,
        "trace_id": span.trace_id,
        "name": span.name,
        "parent_id": span.parent_id,
        "session_id": span.session_id,
        "user_id": span.user_id,
        "status": span.status,
        "attributes": span.attributes,
        "started_at": iso(span.started_at),
        "ended_at": _opt_iso(span.ended_at),
    }


def state_record(entry: StateEntry) -> dict[str, Any]:
    return {
        "type": "state",
        "scope": entry.scope,
        "key": entry.key,
        "value": entry.value,
        "version": entry.version,
        "expires_at": _opt_iso(entry.expires_at),
        "updated_at": iso(entry.updated_at),
    }


class _Fields:
    """Typed access to one parsed record; every complaint names the field."""

    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record

    def _get(self, name: str) -> Any:
        if name not in self.record:
            raise ValidationError(f"missing field {name!r}")
        return self.record[name]

    def text(self, name: str) -> str:
        value = self._get(name)
        if not isinstance(value, str):
            raise ValidationError(f"field {name!r} must be a string")
        return value

    def opt_text(self, name: str) -> str | None:
        value = self.record.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValidationError(f"field {name!r} must be a string or null")
        return value

    def ident(self, name: str) -> str:
        return check_id(self._get(name), name)

    def opt_ident(self, name: str) -> str | None:
        value = self.record.get(name)
        return None if value is None else check_id(value, name)

    def count(self, name: str) -> int:
        value = self._get(name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValidationError(f"field {name!r} must be a non-negative integer")
        return value

    def opt_count(self, name: str) -> int | None:
        return None if self.record.get(name) is None else self.count(name)

    def mapping(self, name: str) -> dict[str, Any]:
        return check_metadata(self._get(name), name)

    def stamp(self, name: str) -> datetime:
        value = self.text(name)
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValidationError(f"field {name!r} is not an ISO 8601 timestamp") from None
        if parsed.tzinfo is None:
            raise ValidationError(f"field {name!r} has no timezone")
        return parsed.astimezone(timezone.utc)

    def opt_stamp(self, name: str) -> datetime | None:
        return None if self.record.get(name) is None else self.stamp(name)


def parse_session(record: dict[str, Any]) -> SessionInfo:
    f = _Fields(record)
    return SessionInfo(
        id=f.ident("id"),
        user_id=f.opt_ident("user_id"),
        agent=f.opt_ident("agent"),
        title=f.opt_text("title"),
        metadata=f.mapping("metadata"),
        parent_id=f.opt_ident("parent_id"),
        forked_at_seq=f.opt_count("forked_at_seq"),
        created_at=f.stamp("created_at"),
        updated_at=f.stamp("updated_at"),
        message_count=f.count("message_count"),
        last_seq=f.count("last_seq"),
    )


def parse_message(record: dict[str, Any]) -> Message:
    f = _Fields(record)
    message = Message(
        session_id=f.ident("session_id"),
        role=f.text("role"),
        content=f._get("content"),
        metadata=f.mapping("metadata"),
        run_id=f.opt_ident("run_id"),
        id=f.ident("id"),
        seq=f.count("seq"),
        created_at=f.stamp("created_at"),
    )
    if message.seq < 1:
        raise ValidationError("field 'seq' must be 1 or more")
    return check_message(message)


def parse_run(record: dict[str, Any]) -> Run:
    f = _Fields(record)
    return Run(
        session_id=f.ident("session_id"),
        id=f.ident("id"),
        model=f.opt_text("model"),
        status=f.text("status"),
        input_tokens=f.count("input_tokens"),
        output_tokens=f.count("output_tokens"),
        started_at=f.stamp("started_at"),
        ended_at=f.opt_stamp("ended_at"),
        error=f.opt_text("error"),
        metadata=f.mapping("metadata"),
    )


def parse_checkpoint(record: dict[str, Any]) -> Checkpoint:
    f = _Fields(record)
    return Checkpoint(
        session_id=f.ident("session_id"),
        seq=f.count("seq"),
        state=f.mapping("state"),
        label=f.opt_text("label"),
        id=f.ident("id"),
        created_at=f.stamp("created_at"),
    )


def parse_span(record: dict[str, Any]) -> Span:
    f = _Fields(record)
    return Span(
        trace_id=f.ident("trace_id"),
        name=f.text("name"),
        id=f.ident("id"),
        parent_id=f.opt_ident("parent_id"),
        session_id=f.opt_ident("session_id"),
        user_id=f.opt_ident("user_id"),
        status=f.text("status"),
        attributes=f.mapping("attributes"),
        started_at=f.stamp("started_at"),
        ended_at=f.opt_stamp("ended_at"),
    )


def parse_state(record: dict[str, Any]) -> StateEntry:
    f = _Fields(record)
    value = f._get("value")
    check_json(value, "state value")
    version = f.count("version")
    if version < 1:
        raise ValidationError("field 'version' must be 1 or more")
    return StateEntry(
        scope=check_scope(f._get("scope")),
        key=f.ident("key"),
        value=value,
        version=version,
        expires_at=f.opt_stamp("expires_at"),
        updated_at=f.stamp("updated_at"),
    )
