"""The fake API's records and scripted behaviour: ids, events, tools, error shapes."""

from __future__ import annotations

import json
import queue
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

FAKE_API_KEY = "sk-ant-fake-local-key"


TRANSCRIPT_MARK = "[user] "


TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


Reply = Callable[[str, int], str]


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def default_reply(text: str, turn: int) -> str:
    return f"Echo: {text} (turn {turn} of this conversation)"


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int
    """HTTP status to answer with; 0 drops the connection without an answer; -1 does the
    work and then drops the connection, so the client never learns it succeeded."""
    times: int


@dataclass
class RemoteSession:
    data: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)
    subscribers: list[tuple[queue.Queue[dict[str, Any] | None], bool]] = field(default_factory=list)
    user_turns: int = 0
    waiting: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    """Custom tool use ids the agent is blocked on -> the result once it arrives."""
    epoch: int = 0
    """Bumped by a new user message or an interrupt: a turn still waiting gives up."""


class Rejected(Exception):
    """A request the real API would refuse with 400 invalid_request_error."""


USER_EVENTS = (
    "user.message",
    "user.interrupt",
    "user.custom_tool_result",
    "user.tool_confirmation",
    "user.define_outcome",
)


def check_tool(tool: Any) -> None:
    """Refuse custom tool definitions the real API would refuse."""
    if not isinstance(tool, dict) or tool.get("type") != "custom":
        return
    name, schema = tool.get("name"), tool.get("input_schema")
    if not isinstance(name, str) or not TOOL_NAME.match(name):
        raise Rejected(f"tools: custom tool name {name!r} is invalid")
    if not isinstance(tool.get("description"), str):
        raise Rejected(f"tools: custom tool {name!r} needs a description")
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise Rejected(f"tools: custom tool {name!r} input_schema must have type 'object'")


def custom_calls(prompt: str) -> list[tuple[str, dict[str, Any]]]:
    """``call: <tool> {json}`` directives, in order (the input defaults to ``{}``)."""
    calls = []
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\bcall:\s*([A-Za-z0-9_-]+)\s*", prompt):
        tool_input: Any = {}
        if prompt[match.end() : match.end() + 1] == "{":
            try:
                tool_input, _ = decoder.raw_decode(prompt, match.end())
            except ValueError:
                tool_input = {}
        calls.append((match.group(1), tool_input if isinstance(tool_input, dict) else {}))
    return calls


def resolve_tool(tool: dict[str, Any]) -> dict[str, Any]:
    if tool.get("type") == "agent_toolset_20260401":
        return {
            "type": "agent_toolset_20260401",
            "configs": list(tool.get("configs") or []),
            "default_config": tool.get("default_config")
            or {"enabled": True, "permission_policy": {"type": "always_allow"}},
        }
    return dict(tool)


def tool_request(prompt: str) -> str | None:
    """``run: <command>`` (anywhere in the message) makes the scripted agent call its bash tool."""
    match = re.search(r"\brun:\s*(.+)", prompt)
    return match.group(1).strip() if match else None


def pieces(text: str, size: int = 12) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def error_body(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_fake"}


STATUS_ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    503: "api_error",
    529: "overloaded_error",
}
