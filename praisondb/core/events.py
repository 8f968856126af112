"""The session layer's analytics events, labelled with their session's user and agent.

A message event names only its session; the user and agent it belongs to come from a
small cache of recently seen sessions (one lookup at most per session), so analytics
can group by user and agent without a join and without slowing the write it follows.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from ..model import AGENT_KEY, Event, Message, SessionInfo
from ..stores.base import AnalyticsSink
from .batches import content_length

LABEL_CACHE = 4096


def message_event(message: Message) -> Event:
    """A message's analytics event: its seq and size, the agent that wrote it (multi-agent
    sessions) and, for a tool result, the tool's name in ``tool``; never its text."""
    attributes: dict[str, Any] = {"seq": message.seq, "chars": content_length(message.content)}
    agent = message.metadata.get(AGENT_KEY)
    if isinstance(agent, str):
        attributes["agent"] = agent
    tool = message.metadata.get("tool_name") if message.role == "tool" else None
    return Event(
        "message",
        id=message.id,
        ts=message.created_at,
        session_id=message.session_id,
        role=message.role,
        tool=str(tool or "tool") if message.role == "tool" else "",
        attributes=attributes,
    )


class EventLog:
    """Sends events to the analytics sink, if one is configured; never fails the caller."""

    def __init__(
        self,
        sink: Callable[[], AnalyticsSink | None],
        lookup: Callable[[str], SessionInfo],
        *,
        enabled: bool,
    ) -> None:
        self.enabled = enabled
        """False when there is no analytics target: callers then skip building events."""
        self._sink = sink
        self._lookup = lookup
        self._lock = threading.Lock()
        self._labels: OrderedDict[str, tuple[str, str]] = OrderedDict()

    def remember(self, info: SessionInfo) -> None:
        """Keep (user_id, agent) of a session so its events carry them without a lookup."""
        if not self.enabled:
            return
        with self._lock:
            self._labels[info.id] = (info.user_id or "", info.agent or "")
            self._labels.move_to_end(info.id)
            while len(self._labels) > LABEL_CACHE:
                self._labels.popitem(last=False)

    def forget(self, session_id: str) -> None:
        with self._lock:
            self._labels.pop(session_id, None)

    def emit(self, event: Event, info: SessionInfo | None = None) -> None:
        if not self.enabled:
            return
        sink = self._sink()
        if sink is None:
            return
        if event.session_id and not (event.user_id or event.agent):
            labels = self._labels.get(event.session_id)
            if labels is None and info is None:
                try:
                    info = self._lookup(event.session_id)
                except Exception:  # noqa: BLE001 - analytics never breaks the caller
                    info = None
                if info is not None:
                    self.remember(info)
            if info is not None:
                labels = (info.user_id or "", info.agent or "")
            if labels:
                event.user_id, event.agent = labels
        sink.record(event)
