"""How the JSON-files store writes each model object as one JSON object, and reads it back.

Field names and timestamps are spelled by :mod:`praisondb.codec`, so the files read
like archives and exports and stay readable by hand and by tools such as ``jq``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...codec import from_record, to_record
from ...model import Message, SessionInfo

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
    return {
        "format": FORMAT_VERSION,
        **to_record(head.info),
        "log": head.log,
        "log_size": head.log_size,
    }


def head_from_json(data: dict[str, Any]) -> SessionHead:
    return SessionHead(
        from_record(SessionInfo, data), str(data["log"]), int(data.get("log_size", 0))
    )


def message_to_json(message: Message) -> dict[str, Any]:
    """``id`` comes first: the id index reads it without parsing the whole line; the
    session id is implied by the log the line is in."""
    record = to_record(message)
    del record["session_id"]
    return {"id": record.pop("id"), **record}


def is_message_record(data: dict[str, Any]) -> bool:
    return (
        isinstance(data.get("id"), str)
        and isinstance(data.get("seq"), int)
        and isinstance(data.get("role"), str)
        and isinstance(data.get("created_at"), str)
        and "content" in data
    )


def message_from_json(session_id: str, data: dict[str, Any]) -> Message:
    return from_record(Message, data, session_id=session_id)
