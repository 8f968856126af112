"""Records of the praisondb archive: one spelling per value, checked on the way in.

The canonical message bytes here are also what ``praisondb verify`` digests, so an
archive and a live store are compared by the same rules.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Any

import orjson

from ...codec import (
    parse_checkpoint,
    parse_memory,
    parse_message,
    parse_run,
    parse_session,
    parse_span,
    parse_state,
    to_record,
)
from ...errors import ArchiveError
from ...model import Checkpoint, MemoryItem, Message, Run, SessionInfo, Span, StateEntry

FORMAT_NAME = "praisondb.archive"
FORMAT_VERSION = 2
"""2 added ``memory`` records (long-term memories) and the end record's ``memories``."""
GZIP_MAGIC = b"\x1f\x8b"

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
# The field spelling is praisondb.codec's; an archive record adds its "type".


def session_record(info: SessionInfo) -> dict[str, Any]:
    return {"type": "session", **to_record(info)}


def message_record(message: Message) -> dict[str, Any]:
    return {"type": "message", **to_record(message)}


def run_record(run: Run) -> dict[str, Any]:
    return {"type": "run", **to_record(run)}


def checkpoint_record(checkpoint: Checkpoint) -> dict[str, Any]:
    return {"type": "checkpoint", **to_record(checkpoint)}


def span_record(span: Span) -> dict[str, Any]:
    return {"type": "span", **to_record(span)}


def state_record(entry: StateEntry) -> dict[str, Any]:
    return {"type": "state", **to_record(entry)}


def memory_record(item: MemoryItem) -> dict[str, Any]:
    record = {"type": "memory", **to_record(item)}
    del record["score"]  # a search result's, never stored
    return record


__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "GZIP_MAGIC",
    "ArchiveError",
    "MessageDigest",
    "canonical_message",
    "checkpoint_record",
    "iso",
    "memory_record",
    "message_record",
    "parse_checkpoint",
    "parse_memory",
    "parse_message",
    "parse_run",
    "parse_session",
    "parse_span",
    "parse_state",
    "run_record",
    "session_record",
    "span_record",
    "state_record",
]
