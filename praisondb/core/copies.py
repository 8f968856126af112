"""Derived sessions' building blocks: message copies, numbered versions, batches.

Message ids are unique per session and copies keep the original id in
``praisondb_origin_id``, so a copy can always be traced back.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from ..ids import new_id
from ..model import Checkpoint, Message

ORIGIN_ID = "praisondb_origin_id"
BATCH = 500
VERSION_LABEL = "version:"


@dataclass(frozen=True, slots=True)
class Version:
    """A numbered, described snapshot of a session (a checkpoint underneath)."""

    number: int
    description: str
    checkpoint: Checkpoint


def parse_version(checkpoint: Checkpoint) -> Version | None:
    label = checkpoint.label or ""
    if not label.startswith(VERSION_LABEL):
        return None
    number, _, description = label[len(VERSION_LABEL) :].partition(":")
    return Version(int(number), description, checkpoint) if number.isdigit() else None


def copy_of(message: Message, session_id: str, seq: int | None = None) -> Message:
    """A copy for another session: new id (ids are global), same content and time."""
    metadata = dict(message.metadata)
    metadata.setdefault(ORIGIN_ID, message.id)
    return replace(
        message,
        session_id=session_id,
        id=new_id(),
        seq=message.seq if seq is None else seq,
        metadata=metadata,
    )


def chunks(
    messages: Iterator[Message] | Iterable[Message], size: int = BATCH
) -> Iterator[list[Message]]:
    batch: list[Message] = []
    for message in messages:
        batch.append(message)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
