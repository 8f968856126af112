"""Which framework face wrote a session, without importing any framework.

Each face stamps the sessions it creates with ``metadata["framework"]``
(``langgraph``, ``openai-agents``, ``adk``, ``praisonai``), so ``praisondb sessions list/show``, the
transfer tools and analytics queries can tell them apart from plain sessions and from
each other; the stamp is ordinary metadata, copied and verified like the rest. Also
how the CLI shows what a face stored (an ADK event, an Agents SDK item) as one line.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..model import Message, SessionInfo, StateEntry

FRAMEWORK_KEY = "framework"
LANGGRAPH = "langgraph"
OPENAI_AGENTS = "openai-agents"
ADK = "adk"
PRAISONAI = "praisonai"


def stamped(metadata: dict[str, Any] | None, framework: str) -> dict[str, Any]:
    """``metadata`` with the face's stamp added."""
    return {**(metadata or {}), FRAMEWORK_KEY: framework}


def framework_of(info: SessionInfo) -> str | None:
    """The framework that created the session, or None for a plain praisondb session."""
    value = info.metadata.get(FRAMEWORK_KEY)
    return value if isinstance(value, str) else None


def describe(message: Message) -> str:
    """A message as one line for people: its text, or what an ADK event or an Agents SDK
    item (stored whole as one content block) says or does."""
    content = message.content
    if isinstance(content, str):
        return content
    return " ".join(text for block in content if (text := _block(block)))


def _block(block: Any) -> str:
    if not isinstance(block, dict):
        return str(block)
    if isinstance(block.get("text"), str):
        return str(block["text"])
    inner = block.get("content")
    if isinstance(inner, dict) and isinstance(inner.get("parts"), list):  # an ADK event
        return " ".join(text for part in inner["parts"] if (text := _part(part)))
    kind = block.get("type")
    if kind == "function_call":
        return f"{block.get('name')}({block.get('arguments', '')})"
    if isinstance(kind, str) and kind.endswith("_output"):
        return f"-> {_short(block.get('output'))}"
    if isinstance(inner, list):
        return " ".join(text for item in inner if (text := _block(item)))
    if isinstance(inner, str):
        return inner
    return _short(block)


def _part(part: Any) -> str:
    if not isinstance(part, dict):
        return ""
    if isinstance(part.get("text"), str):
        return str(part["text"])
    call = part.get("function_call") or part.get("functionCall")
    if isinstance(call, dict):
        return f"{call.get('name')}({_short(call.get('args') or {})})"
    response = part.get("function_response") or part.get("functionResponse")
    if isinstance(response, dict):
        return f"{response.get('name')} -> {_short(response.get('response'))}"
    return ""


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
    return text if len(text) <= 200 else text[:197] + "..."


def state_summary(entries: list[StateEntry]) -> str:
    """``12 entries`` of a session's scope, with what LangGraph keeps there counted."""
    checkpoints = sum(e.key.startswith("langgraph/cp/") for e in entries)
    writes = sum(e.key.startswith("langgraph/writes/") for e in entries)
    text = f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}"
    if checkpoints:
        text += f" (LangGraph: {checkpoints} checkpoints, {writes} with pending writes)"
    return text
