"""Message batches as the repositories take them, and the resend rule for message ids.

A message id names one message: a batch whose ids are all stored with the same role,
content, metadata and run id is a resend (a retry after a lost reply, or a caller's
retry of a turn) and gets the stored messages back; anything else that meets an
existing id is a Conflict.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..errors import Conflict, ValidationError
from ..model import Content, Message

if TYPE_CHECKING:
    from ..stores.base import ConversationStore


def already_stored(
    store: ConversationStore, session_id: str, batch: list[Message]
) -> list[Message]:
    """The stored copies of a batch that met existing ids, if it is a resend; else Conflict."""
    ids = [m.id for m in batch]
    if len(set(ids)) < len(ids):
        raise Conflict("the same message id appears twice in one batch; give each message its own")
    found = {m.id: m for m in store.get_messages(session_id, ids)}
    if not found:  # the clash was with an id that is gone again (deleted meanwhile)
        raise Conflict(
            f"a message id of this batch clashed in session {session_id!r}; send it again"
        )
    for message in batch:
        stored = found.get(message.id)
        if stored is None:
            raise Conflict(
                f"message {next(iter(found))!r} already exists in session {session_id!r} but "
                f"{message.id!r} does not: a retried batch must be sent whole and unchanged"
            )
        if not same_message(stored, message):
            raise Conflict(
                f"message {message.id!r} already exists in session {session_id!r} with other "
                "content; a message id names one message: use a new id for a new message"
            )
    return [found[message_id] for message_id in ids]


def same_message(stored: Message, sent: Message) -> bool:
    return (stored.role, stored.content, stored.metadata, stored.run_id) == (
        sent.role,
        sent.content,
        sent.metadata,
        sent.run_id,
    )


def as_message(session_id: str, item: Message | dict[str, Any]) -> Message:
    if isinstance(item, Message):
        if item.session_id != session_id:
            item = replace(item, session_id=session_id)
        return item
    if not isinstance(item, dict):
        raise ValidationError(f"expected a Message or a dict, not {type(item).__name__}")
    fields = {
        k: v
        for k, v in item.items()
        if k in {"role", "content", "metadata", "run_id", "id", "created_at"}
    }
    if "role" not in fields or "content" not in fields:
        raise ValidationError("a message needs 'role' and 'content'")
    fields["metadata"] = fields.get("metadata") or {}
    return Message(session_id=session_id, **fields)


def content_length(content: Content) -> int:
    return (
        len(content)
        if isinstance(content, str)
        else sum(len(str(b.get("text", ""))) for b in content)
    )
