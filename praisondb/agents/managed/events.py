"""The managed-agents event stream, read into one turn's state.

Events that only change the turn (usage, idle, termination, answered tool calls) are
handled here, one function per event type in a table; events that are stored as
messages are handled by the agent, which owns the database.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

from ...errors import NotFound
from ...model import AGENT_KEY

METADATA_KEY = "managed_agent"


@dataclass
class Turn:
    """What one turn produced, gathered while the event stream is consumed."""

    texts: list[str] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    tool_calls: int = 0
    status: str = "completed"
    error: str | None = None
    seen: set[str] = field(default_factory=set)
    streamed: dict[str, str] = field(default_factory=dict)
    tool_started: dict[str, tuple[str, float]] = field(default_factory=dict)
    done: bool = False
    remote_id: str = ""
    answered: set[str] = field(default_factory=set)
    """Custom tool use ids that have a result (sent by us, or found in the history)."""
    custom_calls: int = 0
    waiting_on: list[str] = field(default_factory=list)
    agent: str | None = None
    """The name the turn's messages are attributed to (``Session.run_agent``), if any."""

    def tagged(self, metadata: dict[str, Any]) -> dict[str, Any]:
        """``metadata`` with this turn's agent attribution, when it has one."""
        return metadata if self.agent is None else {**metadata, AGENT_KEY: self.agent}


def preview(event: Any, turn: Turn) -> Iterator[str]:
    """An ``event_delta``: the next piece of a message still being written."""
    delta = getattr(event, "delta", None)
    piece = getattr(getattr(delta, "content", None), "text", None)
    if isinstance(piece, str) and event.event_id not in turn.seen:
        turn.streamed[event.event_id] = turn.streamed.get(event.event_id, "") + piece
        yield piece


def final_text(event: Any, turn: Turn) -> Generator[str, None, str]:
    """An ``agent.message``: yields what the previews did not show; returns the whole text."""
    text = "".join(b.text for b in event.content if getattr(b, "type", None) == "text")
    shown = turn.streamed.pop(event.id, "")
    if text.startswith(shown):
        rest = text[len(shown) :]
        if rest:
            yield rest
    else:  # the preview diverged; the final event is authoritative
        yield text
    turn.texts.append(text)
    return text


def observe(kind: str | None, event: Any, turn: Turn) -> None:
    """An event that changes the turn but stores nothing; unknown types are ignored."""
    handler = _OBSERVERS.get(kind or "")
    if handler is not None:
        handler(event, turn)


def _answered(event: Any, turn: Turn) -> None:
    turn.answered.add(str(event.custom_tool_use_id))


def _usage(event: Any, turn: Turn) -> None:
    usage = getattr(event, "model_usage", None)
    turn.input_tokens += int(getattr(usage, "input_tokens", 0) or 0)
    turn.output_tokens += int(getattr(usage, "output_tokens", 0) or 0)


def _idle(event: Any, turn: Turn) -> None:
    stop = getattr(event, "stop_reason", None)
    reason = getattr(stop, "type", "end_turn")
    if reason == "requires_action":
        waiting = [str(i) for i in getattr(stop, "event_ids", None) or [] if i not in turn.answered]
        if not waiting:
            return  # only on custom tool calls already answered: the agent resumes
        turn.status = "requires_action"
        turn.waiting_on = waiting
    elif reason != "end_turn":
        turn.status = str(reason)
    turn.done = True


def _terminated(event: Any, turn: Turn) -> None:
    turn.status = "error" if turn.error else "terminated"
    turn.done = True


def _deleted(event: Any, turn: Turn) -> None:
    raise NotFound("the remote session was deleted during the turn")


_OBSERVERS: dict[str, Callable[[Any, Turn], None]] = {
    "user.custom_tool_result": _answered,
    "span.model_request_end": _usage,
    "session.status_idle": _idle,
    "session.status_terminated": _terminated,
    "session.deleted": _deleted,
}
