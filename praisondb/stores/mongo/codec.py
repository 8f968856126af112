"""Documents of the MongoDB backend: key escaping and model <-> document conversion.

MongoDB 4.0 refuses field names with ``.``, a leading ``$`` or a NUL, and BSON dates
hold only milliseconds. So every dict key inside user data (metadata, content blocks,
state values, checkpoint state, attributes) is escaped reversibly, and timestamps are
stored as integer microseconds since the epoch. No driver import here.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from ...model import Checkpoint, Message, Run, SessionInfo, Span

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_NEEDS_ESCAPE = re.compile(r"[%.\x00]|^\$")
_ESCAPED = re.compile(r"%([0-9A-F]{2})")
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


def to_us(moment: datetime) -> int:
    delta = moment - EPOCH  # field arithmetic: ~2x faster than ``// timedelta(1 µs)``
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=int(us))


def escape_key(key: str) -> str:
    """``%`` -> ``%25``, ``.`` -> ``%2E``, NUL -> ``%00``, a leading ``$`` -> ``%24``;
    the empty key becomes ``%`` (which no other key can produce)."""
    if not key:
        return "%"
    if not _NEEDS_ESCAPE.search(key):
        return key
    text = key.replace("%", "%25").replace(".", "%2E").replace("\x00", "%00")
    return "%24" + text[1:] if text.startswith("$") else text


def unescape_key(key: str) -> str:
    if key == "%":
        return ""
    if "%" not in key:
        return key
    return _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)), key)


def escape(value: Any) -> Any:
    """Escape every dict key inside JSON data, at any depth."""
    if isinstance(value, dict):
        return {escape_key(k): escape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [escape(v) for v in value]
    return value


def is_plain(value: Any) -> bool:
    """True when ``value`` reads back as itself: no dict key that :func:`escape` changes
    and no int that BSON stores as Int64. Such documents skip :func:`unescape` on load."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not key or _NEEDS_ESCAPE.search(key) or not is_plain(item):
                return False
        return True
    if isinstance(value, list):
        return all(is_plain(item) for item in value)
    if type(value) is int:
        return _INT32_MIN <= value <= _INT32_MAX
    return True


def unescape(value: Any) -> Any:
    """Undo :func:`escape`; also turn BSON Int64 back into a plain ``int``."""
    if isinstance(value, dict):
        return {unescape_key(k): unescape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unescape(v) for v in value]
    if isinstance(value, int) and type(value) is not int and type(value) is not bool:
        return int(value)
    return value


def session_doc(info: SessionInfo) -> dict[str, Any]:
    return {
        "_id": info.id,
        "user_id": info.user_id,
        "agent": info.agent,
        "title": info.title,
        "metadata": escape(info.metadata),
        "parent_id": info.parent_id,
        "forked_at_seq": info.forked_at_seq,
        "created_at": to_us(info.created_at),
        "updated_at": to_us(info.updated_at),
        "message_count": info.message_count,
        "last_seq": info.last_seq,
    }


def parse_session(doc: dict[str, Any]) -> SessionInfo:
    return SessionInfo(
        id=doc["_id"],
        user_id=doc.get("user_id"),
        agent=doc.get("agent"),
        title=doc.get("title"),
        metadata=unescape(doc.get("metadata") or {}),
        parent_id=doc.get("parent_id"),
        forked_at_seq=_int_or_none(doc.get("forked_at_seq")),
        created_at=from_us(doc["created_at"]),
        updated_at=from_us(doc["updated_at"]),
        message_count=int(doc.get("message_count", 0)),
        last_seq=int(doc.get("last_seq", 0)),
    )


def message_key(session_id: str, message_id: str) -> str:
    """``_id`` of a message: unique per (session, message id); ids never hold control chars."""
    return f"{session_id}\x1f{message_id}"


def message_doc(session_id: str, m: Message, seq: int) -> dict[str, Any]:
    """``p: 1`` marks a message whose content and metadata need no unescaping on load
    (nearly all of them); documents without it (older ones too) take the full path."""
    doc = {
        "_id": message_key(session_id, m.id),
        "sid": session_id,
        "seq": seq,
        "id": m.id,
        "role": m.role,
        "content": m.content,
        "metadata": m.metadata,
        "run_id": m.run_id,
        "created_at": to_us(m.created_at),
    }
    if is_plain(m.content) and is_plain(m.metadata):
        doc["p"] = 1
    else:
        doc["content"] = escape(m.content)
        doc["metadata"] = escape(m.metadata)
    return doc


MESSAGE_FIELDS = {"_id": 0, "sid": 1, "seq": 1, "id": 1, "role": 1, "content": 1}
MESSAGE_FIELDS.update({"metadata": 1, "run_id": 1, "created_at": 1, "p": 1})
"""The projection of a load: everything parse_message reads, without the long ``_id``."""


def parse_message(doc: dict[str, Any]) -> Message:
    if doc.get("p"):
        content, metadata = doc["content"], doc.get("metadata") or {}
    else:
        content, metadata = unescape(doc["content"]), unescape(doc.get("metadata") or {})
    return Message(
        doc["sid"],
        doc["role"],
        content,
        metadata,
        doc.get("run_id"),
        doc["id"],
        int(doc["seq"]),
        EPOCH + timedelta(microseconds=doc["created_at"]),
    )


def run_doc(run: Run) -> dict[str, Any]:
    return {
        "_id": run.id,
        "sid": run.session_id,
        "model": run.model,
        "status": run.status,
        "input_tokens": run.input_tokens,
        "output_tokens": run.output_tokens,
        "started_at": to_us(run.started_at),
        "ended_at": None if run.ended_at is None else to_us(run.ended_at),
        "error": run.error,
        "metadata": escape(run.metadata),
    }


def parse_run(doc: dict[str, Any]) -> Run:
    return Run(
        session_id=doc["sid"],
        id=doc["_id"],
        model=doc.get("model"),
        status=doc["status"],
        input_tokens=int(doc["input_tokens"]),
        output_tokens=int(doc["output_tokens"]),
        started_at=from_us(doc["started_at"]),
        ended_at=None if doc.get("ended_at") is None else from_us(doc["ended_at"]),
        error=doc.get("error"),
        metadata=unescape(doc.get("metadata") or {}),
    )


def checkpoint_doc(c: Checkpoint) -> dict[str, Any]:
    return {
        "_id": c.id,
        "sid": c.session_id,
        "seq": c.seq,
        "state": escape(c.state),
        "label": c.label,
        "created_at": to_us(c.created_at),
    }


def parse_checkpoint(doc: dict[str, Any]) -> Checkpoint:
    return Checkpoint(
        session_id=doc["sid"],
        seq=int(doc["seq"]),
        state=unescape(doc.get("state") or {}),
        label=doc.get("label"),
        id=doc["_id"],
        created_at=from_us(doc["created_at"]),
    )


def span_doc(s: Span) -> dict[str, Any]:
    return {
        "_id": s.id,
        "trace_id": s.trace_id,
        "name": s.name,
        "parent_id": s.parent_id,
        "session_id": s.session_id,
        "user_id": s.user_id,
        "status": s.status,
        "attributes": escape(s.attributes),
        "started_at": to_us(s.started_at),
        "ended_at": None if s.ended_at is None else to_us(s.ended_at),
    }


def parse_span(doc: dict[str, Any]) -> Span:
    return Span(
        trace_id=doc["trace_id"],
        name=doc["name"],
        id=doc["_id"],
        parent_id=doc.get("parent_id"),
        session_id=doc.get("session_id"),
        user_id=doc.get("user_id"),
        status=doc["status"],
        attributes=unescape(doc.get("attributes") or {}),
        started_at=from_us(doc["started_at"]),
        ended_at=None if doc.get("ended_at") is None else from_us(doc["ended_at"]),
    )


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)
