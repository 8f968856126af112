"""One spelling of every model object as plain JSON data, shared by every format.

The JSON-files store, archives and session exports write the same field names, so
there is one place that decides them. Two ways back in:

- :func:`from_record` trusts its input: a store reading records it wrote itself.
- the ``parse_*`` functions check every field of untrusted input (an archive, an
  imported export) and name the field that is wrong.

Timestamps are ISO 8601 in UTC with exactly six fractional digits, so one instant has
one spelling and digests over records are stable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import fields
from datetime import datetime, timezone
from typing import Any, TypeVar

from .errors import ValidationError
from .model import Checkpoint, MemoryItem, Message, Run, SessionInfo, Span, StateEntry
from .validation import (
    INT_MAX,
    check_id,
    check_json,
    check_memory,
    check_message,
    check_metadata,
    check_scope,
    whole,
)

Model = SessionInfo | Message | Run | Checkpoint | Span | StateEntry | MemoryItem
M = TypeVar("M", SessionInfo, Message, Run, Checkpoint, Span, StateEntry, MemoryItem)

_MODELS = (SessionInfo, Message, Run, Checkpoint, Span, StateEntry, MemoryItem)
_FIELDS: dict[type, tuple[str, ...]] = {cls: tuple(f.name for f in fields(cls)) for cls in _MODELS}
_TIMES: dict[type, frozenset[str]] = {
    cls: frozenset(f.name for f in fields(cls) if "datetime" in str(f.type)) for cls in _MODELS
}


def iso(value: datetime) -> str:
    """UTC with six fractional digits; a naive datetime is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat(timespec="microseconds")


def parse_iso(text: str) -> datetime:
    """Aware UTC from ISO 8601; a value without an offset is taken as UTC. ValueError for
    text that is not one, or whose UTC time is outside years 1..9999."""
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return _utc(value)


def _utc(value: datetime) -> datetime:
    try:
        return value.astimezone(timezone.utc)
    except OverflowError:  # 0001-01-01T00:00+01:00 is in year 0 in UTC
        raise ValueError(f"{value.isoformat()} is outside years 1..9999 in UTC") from None


def to_record(obj: Model, time: Callable[[datetime], Any] = iso) -> dict[str, Any]:
    """Every field of ``obj`` by name, timestamps spelled by ``time``."""
    times = _TIMES[type(obj)]
    record: dict[str, Any] = {}
    for name in _FIELDS[type(obj)]:
        value = getattr(obj, name)
        record[name] = time(value) if value is not None and name in times else value
    return record


def _as_is(value: datetime) -> datetime:
    return value


def to_values(obj: Model) -> dict[str, Any]:
    """Every field of ``obj`` by name, timestamps kept as datetimes: a SQL row, whose
    column types encode values themselves."""
    return to_record(obj, _as_is)


def from_record(
    cls: type[M],
    record: Mapping[str, Any],
    time: Callable[[Any], datetime] = parse_iso,
    **overrides: Any,
) -> M:
    """The model object back from a trusted record; unknown keys are ignored and
    missing ones take the model's defaults."""
    times = _TIMES[cls]
    kwargs: dict[str, Any] = {}
    for name in _FIELDS[cls]:
        if name in overrides:
            kwargs[name] = overrides[name]
        elif name in record:
            value = record[name]
            kwargs[name] = time(value) if value is not None and name in times else value
    return cls(**kwargs)


# -- strict parsing of untrusted records ----------------------------------------------


class _Fields:
    """Typed access to one untrusted record; every complaint names the field."""

    def __init__(self, record: Mapping[str, Any]) -> None:
        if not isinstance(record, Mapping):
            raise ValidationError(f"expected an object, not {type(record).__name__}")
        self.record = record

    def get(self, name: str) -> Any:
        if name not in self.record:
            raise ValidationError(f"missing field {name!r}")
        return self.record[name]

    def text(self, name: str) -> str:
        value = self.get(name)
        if not isinstance(value, str):
            raise ValidationError(f"field {name!r} must be a string")
        return value

    def opt_text(self, name: str) -> str | None:
        value = self.record.get(name)
        if value is not None and not isinstance(value, str):
            raise ValidationError(f"field {name!r} must be a string or null")
        return value

    def ident(self, name: str) -> str:
        return check_id(self.get(name), name)

    def opt_ident(self, name: str) -> str | None:
        value = self.record.get(name)
        return None if value is None else check_id(value, name)

    def count(self, name: str, minimum: int = 0) -> int:
        value = whole(self.get(name))
        if type(value) is not int or not minimum <= value <= INT_MAX:
            raise ValidationError(f"field {name!r} must be an integer from {minimum} to {INT_MAX}")
        return value

    def opt_count(self, name: str) -> int | None:
        return None if self.record.get(name) is None else self.count(name)

    def mapping(self, name: str) -> dict[str, Any]:
        return check_metadata(self.get(name), name)

    def stamp(self, name: str) -> datetime:
        value = self.text(name)
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValidationError(f"field {name!r} is not an ISO 8601 timestamp") from None
        if parsed.tzinfo is None:
            raise ValidationError(f"field {name!r} has no timezone")
        try:
            return _utc(parsed)
        except ValueError as exc:
            raise ValidationError(f"field {name!r}: {exc}") from None

    def opt_stamp(self, name: str) -> datetime | None:
        return None if self.record.get(name) is None else self.stamp(name)


def parse_session(record: Mapping[str, Any]) -> SessionInfo:
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


def parse_message(record: Mapping[str, Any], session_id: str | None = None) -> Message:
    """``session_id`` overrides the record's (a session export nests messages)."""
    f = _Fields(record)
    return check_message(
        Message(
            session_id=check_id(session_id) if session_id is not None else f.ident("session_id"),
            role=f.text("role"),
            content=f.get("content"),
            metadata=f.mapping("metadata"),
            run_id=f.opt_ident("run_id"),
            id=f.ident("id"),
            seq=f.count("seq", minimum=1),
            created_at=f.stamp("created_at"),
        )
    )


def parse_run(record: Mapping[str, Any], session_id: str | None = None) -> Run:
    f = _Fields(record)
    return Run(
        session_id=check_id(session_id) if session_id is not None else f.ident("session_id"),
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


def parse_checkpoint(record: Mapping[str, Any], session_id: str | None = None) -> Checkpoint:
    f = _Fields(record)
    return Checkpoint(
        session_id=check_id(session_id) if session_id is not None else f.ident("session_id"),
        seq=f.count("seq"),
        state=f.mapping("state"),
        label=f.opt_text("label"),
        id=f.ident("id"),
        created_at=f.stamp("created_at"),
    )


def parse_span(record: Mapping[str, Any]) -> Span:
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


def parse_state(record: Mapping[str, Any]) -> StateEntry:
    f = _Fields(record)
    value = check_json(f.get("value"), "state value")
    return StateEntry(
        scope=check_scope(f.get("scope")),
        key=f.ident("key"),
        value=value,
        version=f.count("version", minimum=1),
        expires_at=f.opt_stamp("expires_at"),
        updated_at=f.stamp("updated_at"),
    )


def parse_memory(record: Mapping[str, Any]) -> MemoryItem:
    """A long-term memory from an archive or export, every field checked."""
    f = _Fields(record)
    embedding = record.get("embedding")
    return check_memory(
        MemoryItem(
            text=f.text("text"),
            scope=f.text("scope"),
            owner=f.ident("owner"),
            importance=f.get("importance"),
            relevance=f.get("relevance"),
            quality=f.get("quality"),
            metadata=f.mapping("metadata"),
            embedding=embedding,
            id=f.ident("id"),
            created_at=f.stamp("created_at"),
        )
    )
