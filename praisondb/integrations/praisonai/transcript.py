"""PraisonAI's chat transcript <-> praisondb messages, tool turns included.

An assistant turn that asked for tools keeps its calls, in OpenAI's chat format, under
``metadata["tool_calls"]``; a tool result keeps the id of the call it answers under
``metadata["tool_call_id"]``. On resume :func:`history` hands the Agent
:class:`AgentMessage` objects (ordinary messages plus those two attributes, which
PraisonAI's ``_restore_db_history`` reads), so the model gets back the exact exchange.

A resumed request must also be one the chat API accepts: every tool message answers a
call made just before it, and every call is answered. So :func:`history` leaves out what
would break that: ``tool`` records without a call id (``on_tool_call`` logs them),
results whose call is not in the history, and calls whose result was never stored (a
process that died between the two).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any

import orjson

from ...coerce import json_safe
from ...model import Message

TOOL_CALLS = "tool_calls"
TOOL_CALL_ID = "tool_call_id"


@dataclass(slots=True)
class AgentMessage(Message):
    """A stored message as PraisonAI's ``DbMessage`` reads: with the assistant's
    ``tool_calls`` (OpenAI format) or the tool result's ``tool_call_id``."""

    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None


def tool_calls_metadata(tool_calls: Iterable[Any] | None) -> list[dict[str, Any]]:
    """Tool calls as OpenAI chat dicts, whichever shape the Agent handed them in: OpenAI
    dicts (what it sends today) or ``DbToolCall``-like objects (``tool_name``, ``args``,
    ``call_id``)."""
    calls = []
    for call in tool_calls or ():
        if isinstance(call, dict):
            calls.append(json_safe(call))
            continue
        name = getattr(call, "tool_name", None) or getattr(call, "name", None)
        args = getattr(call, "args", None)
        arguments = args if isinstance(args, str) else orjson.dumps(json_safe(args or {})).decode()
        calls.append(
            {
                "id": getattr(call, "call_id", None) or getattr(call, "id", None),
                "type": "function",
                "function": {"name": str(name), "arguments": arguments},
            }
        )
    return calls


def history(messages: Iterable[Message]) -> list[AgentMessage]:
    """The session as a transcript the chat API accepts (see the module docstring)."""
    stored = list(messages)
    answered = _answered_calls(stored)
    out: list[AgentMessage] = []
    open_calls: set[str] = set()
    for message in stored:
        meta = message.metadata
        if message.role == "tool":
            call_id = meta.get(TOOL_CALL_ID)
            if isinstance(call_id, str) and call_id in open_calls:
                open_calls.discard(call_id)
                out.append(_agent_message(message, tool_call_id=call_id))
            continue
        open_calls.clear()
        calls = meta.get(TOOL_CALLS) if message.role == "assistant" else None
        if isinstance(calls, list) and calls:
            kept = [c for c in calls if isinstance(c, dict) and c.get("id") in answered]
            open_calls = {c["id"] for c in kept}
            if kept:
                out.append(_agent_message(message, tool_calls=kept))
            elif message.content:
                out.append(_agent_message(message))
            continue
        out.append(_agent_message(message))
    return out


def _answered_calls(messages: list[Message]) -> set[str]:
    """Call ids answered by a tool message in the same run of tool results after them."""
    answered: set[str] = set()
    asked: set[str] = set()
    for message in messages:
        if message.role == "tool":
            call_id = message.metadata.get(TOOL_CALL_ID)
            if isinstance(call_id, str) and call_id in asked:
                answered.add(call_id)
            continue
        calls = message.metadata.get(TOOL_CALLS) if message.role == "assistant" else None
        asked = {
            c["id"]
            for c in (calls if isinstance(calls, list) else ())
            if isinstance(c, dict) and isinstance(c.get("id"), str)
        }
    return answered


_MESSAGE_FIELDS = tuple(f.name for f in fields(Message))


def _agent_message(message: Message, **extra: Any) -> AgentMessage:
    return AgentMessage(**{name: getattr(message, name) for name in _MESSAGE_FIELDS}, **extra)
