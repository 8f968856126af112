"""The lifecycle hooks PraisonAI agents call on their ``db`` (``MemoryConfig(db=...)``).

``PraisonDB`` inherits :class:`LifecycleMixin`, so it satisfies PraisonAI's ``DbAdapter``
protocol (and its optional tool-turn and async hooks) structurally, without importing
PraisonAI. Every hook writes through the public repositories: runs, messages, traces and
spans are real rows (documents, keys) that a new process can query, on every backend.

What praisonaiagents 1.7.17 calls (read from its ``agent/memory_mixin.py``):
``on_agent_start`` once per Agent (its return value is the resumed history), then per
turn ``on_run_start``/``on_run_end`` (awaited ``aon_*`` twins from ``achat``/``astart``
when they are coroutine functions), ``on_user_message``, ``on_agent_message`` and, on
the streaming path, ``on_assistant_message(..., tool_calls=...)`` and
``on_tool_message(..., tool_call_id=...)``. Message hooks are always called
synchronously (from a worker thread under ``achat``).
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from ...coerce import as_text, json_safe
from ...errors import BackendUnavailable, ConfigError, NotFound, SchemaOutOfDate
from ...model import Event, Message, Run, SessionInfo, utcnow
from ..labels import PRAISONAI, stamped
from .tracing import TracingMixin
from .transcript import TOOL_CALL_ID, TOOL_CALLS, AgentMessage, history, tool_calls_metadata

if TYPE_CHECKING:
    from ...core.events import EventLog
    from ...core.repositories import Messages, Runs, Sessions

PROTOCOL_VERSION = "1.0"
"""The PraisonAI DbAdapter protocol version these hooks implement."""

P = ParamSpec("P")
T = TypeVar("T")


def _in_worker_thread(
    hook: Callable[Concatenate[Any, P], T],
) -> Callable[Concatenate[Any, P], Coroutine[Any, Any, T]]:
    """The awaited twin of a sync hook: the same call on a worker thread, so an agent's
    event loop never waits on the store (same signature and docstring)."""

    @functools.wraps(hook)
    async def awaited_hook(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await asyncio.to_thread(hook, self, *args, **kwargs)

    return awaited_hook


class LifecycleMixin(TracingMixin):
    """PraisonAI's agent lifecycle protocol on top of the repositories."""

    if TYPE_CHECKING:
        sessions: Sessions
        messages: Messages
        runs: Runs

        @property
        def events(self) -> EventLog: ...

    # -- per-process bookkeeping (what is running now; nothing here is the record) ------
    def _lifecycle(self) -> _Bookkeeping:
        book: _Bookkeeping | None = self.__dict__.get("_lifecycle_book")
        if book is None:
            book = self.__dict__.setdefault("_lifecycle_book", _Bookkeeping())
        return book

    def _ensure_session(
        self, session_id: str, agent: str | None = None, user_id: str | None = None
    ) -> SessionInfo:
        return self.sessions.get_or_create(
            session_id, user_id=user_id, agent=agent, metadata=stamped(None, PRAISONAI)
        )

    def _append(
        self, session_id: str, role: str, content: Any, metadata: dict[str, Any] | None
    ) -> Message:
        run = self._lifecycle().runs.get(session_id)
        run_id = run.run_id if run else None
        text = content if isinstance(content, (str, list)) else as_text(content)
        meta = json_safe(dict(metadata or {}))
        try:
            return self.messages.append(session_id, role, text, meta, run_id=run_id)
        except NotFound:
            self._ensure_session(session_id)
            return self.messages.append(session_id, role, text, meta, run_id=run_id)

    def _reply(self, session_id: str, role: str, content: Any, metadata: dict[str, Any]) -> None:
        """Store a reply of the open run, after the user's message it answers.

        praisonaiagents 1.7.17's ``achat`` (OpenAI path) never calls ``on_user_message``;
        the run's ``input_content`` is that message, so it is stored here when the
        run's first reply arrives without it (unless it is already the last message)."""
        run = self._lifecycle().runs.get(session_id)
        if run is not None and not run.asked and run.input:
            run.asked = True
            last = self.messages.list(session_id, last=1)
            if not (last and last[0].role == "user" and last[0].content == run.input):
                self._append(session_id, "user", run.input, None)
        self._append(session_id, role, content, metadata)

    # -- the protocol -------------------------------------------------------------------
    def on_agent_start(
        self,
        agent_name: str,
        session_id: str,
        user_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> list[AgentMessage]:
        """Get or create the session; returns its history for the agent to resume with:
        assistant tool calls and tool results included, as the chat API accepts them."""
        info = self._ensure_session(session_id, agent=agent_name, user_id=user_id)
        if metadata:
            self.sessions.update(info.id, metadata={"agent_metadata": json_safe(metadata)})
        self.events.emit(Event("agent_start", session_id=info.id, agent=agent_name or ""), info)
        return history(self.messages.iterate(info.id))

    aon_agent_start = _in_worker_thread(on_agent_start)

    def on_user_message(
        self, session_id: str, content: str, metadata: dict[str, Any] | None = None
    ) -> None:
        self._append(session_id, "user", content, metadata)
        run = self._lifecycle().runs.get(session_id)
        if run is not None:
            run.asked = True

    def on_agent_message(
        self, session_id: str, content: str, metadata: dict[str, Any] | None = None
    ) -> None:
        self._reply(session_id, "assistant", content, dict(metadata or {}))

    def on_assistant_message(
        self,
        session_id: str,
        content: str,
        tool_calls: list[Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """An assistant turn that asked for tools: the calls (OpenAI chat format) are kept
        in ``metadata["tool_calls"]`` and come back from ``on_agent_start``."""
        meta = dict(metadata or {})
        calls = tool_calls_metadata(tool_calls)
        if calls:
            meta[TOOL_CALLS] = calls
            self._lifecycle().asked_tools(session_id, calls)
        self._reply(session_id, "assistant", content or "", meta)

    def on_tool_message(
        self,
        session_id: str,
        content: str,
        tool_call_id: str,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """A tool result answering call ``tool_call_id`` (kept in
        ``metadata["tool_call_id"]``); also an analytics ``tool_call`` event."""
        meta = dict(metadata or {})
        meta[TOOL_CALL_ID] = tool_call_id
        self._reply(session_id, "tool", as_text(content), meta)
        name = self._lifecycle().answered_tool(session_id, tool_call_id)
        self.events.emit(
            Event(
                "tool_call",
                session_id=session_id,
                tool=name or "",
                status="ok",
                attributes={"call_id": str(tool_call_id)},
            )
        )

    def on_tool_call(
        self,
        session_id: str,
        tool_name: str,
        args: dict[str, Any],
        result: Any,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Stored as a ``tool`` message: the full result as content, the full
        arguments in ``metadata["tool"]``; also an analytics ``tool_call`` event."""
        meta = dict(metadata or {})
        meta["tool"] = {"name": tool_name, "args": json_safe(args)}
        self._append(session_id, "tool", as_text(result), meta)
        error = meta.get("error")
        latency = meta.get("latency_ms", meta.get("duration_ms")) or 0.0
        self.events.emit(
            Event(
                "tool_call",
                session_id=session_id,
                tool=tool_name,
                latency_ms=float(latency) if isinstance(latency, (int, float)) else 0.0,
                status="error" if error else str(meta.get("status", "ok")),
                attributes={
                    "args": meta["tool"]["args"],
                    **({"error": str(error)} if error else {}),
                },
            )
        )

    def on_agent_end(self, session_id: str, metadata: dict[str, Any] | None = None) -> None:
        """Record when the agent finished with the session (and any end metadata)."""
        fields: dict[str, Any] = {"agent_ended_at": utcnow().isoformat()}
        if metadata:
            fields["agent_end_metadata"] = json_safe(metadata)
        try:
            self.sessions.update(session_id, metadata=fields)
        except NotFound:
            return
        self.events.emit(Event("agent_end", session_id=session_id))

    def on_run_start(
        self,
        session_id: str,
        run_id: str,
        input_content: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Persist a running Run; messages logged until ``on_run_end`` carry its id."""
        meta = json_safe(dict(metadata or {}))
        if input_content is not None:
            meta["input"] = input_content
        self._ensure_session(session_id)
        model = meta.get("model")
        self.runs.start(
            session_id,
            run_id=run_id,
            model=model if isinstance(model, str) else None,
            metadata=meta,
        )
        text = input_content if isinstance(input_content, str) else None
        self._lifecycle().runs[session_id] = _OpenRun(run_id, text)

    aon_run_start = _in_worker_thread(on_run_start)

    def on_run_end(
        self,
        session_id: str,
        run_id: str,
        output_content: str | None = None,
        status: str = "completed",
        metrics: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Close the Run with its status, token counts (``input_tokens``/``prompt_tokens``,
        ``output_tokens``/``completion_tokens`` in ``metrics``) and output."""
        metrics = json_safe(dict(metrics or {}))
        meta = json_safe(dict(metadata or {}))
        if output_content is not None:
            meta["output"] = output_content
        if metrics:
            meta["metrics"] = metrics
        try:
            self.runs.get(run_id)
        except NotFound:  # the start was never reported: record the run anyway
            self.on_run_start(session_id, run_id)
        error = meta.get("error")
        self.runs.end(
            run_id,
            status=status,
            input_tokens=_int(metrics, "input_tokens", "prompt_tokens"),
            output_tokens=_int(metrics, "output_tokens", "completion_tokens"),
            error=str(error) if error else None,
            metadata=meta,
        )
        self._lifecycle().close_run(session_id, run_id)
        if status in {"error", "failed"}:
            self.events.emit(
                Event(
                    "error",
                    session_id=session_id,
                    status=status,
                    attributes={"run_id": run_id, "error": str(error or "")},
                )
            )

    aon_run_end = _in_worker_thread(on_run_end)

    def get_runs(self, session_id: str, limit: int | None = None) -> list[Run]:
        return self.runs.list(session_id, limit=limit)

    def export_session(self, session_id: str) -> dict[str, Any]:
        return self.sessions.export(session_id)

    def import_session(self, data: dict[str, Any]) -> str:
        return self.sessions.import_session(data).id

    # -- schema -------------------------------------------------------------------------
    def get_schema_version(self) -> str:
        """The PraisonAI DbAdapter protocol version implemented here."""
        return PROTOCOL_VERSION

    def check_schema_compatibility(self) -> tuple[bool, str]:
        """(ok, message): whether the store answers and its schema is current."""
        try:
            revision = self.conversations.schema_version()
        except (SchemaOutOfDate, BackendUnavailable, ConfigError) as exc:
            return False, str(exc)
        where = f"schema revision {revision}" if revision else "schemaless store"
        return True, f"praisondb DbAdapter protocol {PROTOCOL_VERSION}, {where}"

    def migrate_schema(self, from_version: str, to_version: str) -> bool:
        """Only protocol 1.0 exists; SQL schema upgrades are ``praisondb db upgrade``."""
        return from_version == to_version == PROTOCOL_VERSION


@dataclass(slots=True)
class _OpenRun:
    run_id: str
    input: str | None
    asked: bool = False
    """Whether the user's message of this run is stored."""


class _Bookkeeping:
    """Which run is open per session, and which tool calls await their result."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runs: dict[str, _OpenRun] = {}
        self.calls: dict[tuple[str, str], str] = {}

    def close_run(self, session_id: str, run_id: str) -> None:
        with self.lock:
            run = self.runs.get(session_id)
            if run is not None and run.run_id == run_id:
                del self.runs[session_id]

    def asked_tools(self, session_id: str, calls: list[dict[str, Any]]) -> None:
        with self.lock:
            for call in calls:
                function = call.get("function")
                name = function.get("name") if isinstance(function, dict) else None
                if isinstance(call.get("id"), str) and isinstance(name, str):
                    self.calls[(session_id, call["id"])] = name
                    while len(self.calls) > _PENDING_CALLS:
                        del self.calls[next(iter(self.calls))]

    def answered_tool(self, session_id: str, call_id: str) -> str | None:
        """The name of the tool whose call ``call_id`` was answered, if this process saw it."""
        with self.lock:
            return self.calls.pop((session_id, str(call_id)), None)


_PENDING_CALLS = 10_000


def _int(metrics: dict[str, Any], *names: str) -> int | None:
    for name in names:
        value = metrics.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None
