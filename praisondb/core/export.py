"""One session as a JSON-safe, versioned document, and back.

The document carries everything the session owns (its record, messages, runs,
spans, checkpoints and session-scoped state) with ids, seq values and timestamps
exactly as stored, so importing it elsewhere reproduces the session and importing
it twice adds nothing (messages are put by id, the rest overwritten by id).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..codec import (
    Model,
    parse_checkpoint,
    parse_message,
    parse_run,
    parse_session,
    parse_span,
    parse_state,
    to_record,
)
from ..errors import ValidationError
from ..model import Message, SessionInfo

if TYPE_CHECKING:
    from ..stores.base import ConversationStore, StateStore

FORMAT = "praisondb.session"
FORMAT_VERSION = 1
BATCH = 500


def _nested(obj: Model, *implied: str) -> dict[str, Any]:
    """A record inside the document, without the fields the document implies."""
    record = to_record(obj)
    for name in implied:
        del record[name]
    return record


def export_session(
    conversations: ConversationStore, state: StateStore, session_id: str
) -> dict[str, Any]:
    """The whole session as plain JSON data (``orjson.dumps`` can write it as is)."""
    info = conversations.get_session(session_id)
    scope = f"session:{info.id}"
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "session": to_record(info),
        "messages": [_nested(m, "session_id") for m in _all_messages(conversations, info.id)],
        "runs": [_nested(r, "session_id") for r in conversations.list_runs(info.id)],
        "spans": [to_record(s) for s in conversations.list_spans(session_id=info.id)],
        "checkpoints": [_nested(c, "session_id") for c in conversations.list_checkpoints(info.id)],
        "state": [_nested(e, "scope") for e in state.list_entries(scope)],
    }


def _all_messages(conversations: ConversationStore, session_id: str) -> Iterator[Message]:
    after = 0
    while True:
        page = conversations.list_messages(session_id, after_seq=after, limit=BATCH)
        yield from page
        if len(page) < BATCH:
            return
        after = page[-1].seq


def _items(data: dict[str, Any], name: str) -> list[dict[str, Any]]:
    items = data.get(name, [])
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ValidationError(f"session document: {name!r} must be a list of objects")
    return items


def _batches(items: list[Message]) -> Iterator[list[Message]]:
    for start in range(0, len(items), BATCH):
        yield items[start : start + BATCH]


def import_session(
    conversations: ConversationStore, state: StateStore, data: dict[str, Any]
) -> SessionInfo:
    """Write an exported session into the stores, keeping ids, seq and timestamps; idempotent."""
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
    info = parse_session(raw)
    sid = info.id
    scope = f"session:{sid}"
    messages = [parse_message(m, sid) for m in _items(data, "messages")]
    runs = [parse_run(r, sid) for r in _items(data, "runs")]
    spans = [parse_span({**s, "session_id": sid}) for s in _items(data, "spans")]
    checkpoints = [parse_checkpoint(c, sid) for c in _items(data, "checkpoints")]
    entries = [parse_state({**e, "scope": scope}) for e in _items(data, "state")]
    store = conversations
    store.put_session(info)
    for batch in _batches(messages):
        store.put_messages(sid, batch)
    for run in runs:
        store.save_run(run)
    for span in spans:
        store.save_span(span)
    for checkpoint in checkpoints:
        store.save_checkpoint(checkpoint)
    if entries:
        state.put_entries(entries)
    return store.get_session(sid)
