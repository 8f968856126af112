"""The lifecycle hooks PraisonAI agents call on their ``db=`` argument.

``PraisonDB`` inherits :class:`LifecycleMixin`, so it satisfies PraisonAI's
``DbAdapter`` protocol structurally, without importing PraisonAI. Every hook writes
through the public repositories and the store protocols: runs, traces and spans are
real rows (documents, keys) that a new process can query, on every backend.

Trace model: a trace is stored as its root :class:`~praisondb.model.Span` whose id is
the trace id and whose ``parent_id`` is None; spans started without a parent hang
under that root.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..coerce import as_text, json_safe
from ..errors import BackendUnavailable, ConfigError, NotFound, SchemaOutOfDate, ValidationError
from ..model import Event, Message, Run, SessionInfo, Span, utcnow
from ..validation import check_id, check_int, check_text

if TYPE_CHECKING:
    from ..core.events import EventLog
    from ..core.repositories import Messages, Runs, Sessions
    from ..stores.base import ConversationStore

PROTOCOL_VERSION = "1.0"
"""The PraisonAI DbAdapter protocol version these hooks implement."""
_SPAN_CACHE = 10_000


@dataclass(slots=True)
class Trace:
    """A trace with its spans, as ``get_traces`` returns it (PraisonAI's DbTrace shape)."""

    trace_id: str
    session_id: str | None
    user_id: str | None
    run_id: str | None
    agent_name: str | None
    status: str
    started_at: datetime
    ended_at: datetime | None
    metadata: dict[str, Any] = field(default_factory=dict)
    spans: list[Span] = field(default_factory=list)


class LifecycleMixin:
    """PraisonAI's agent lifecycle protocol on top of the repositories."""

    if TYPE_CHECKING:
        sessions: Sessions
        messages: Messages
        runs: Runs

        @property
        def conversations(self) -> ConversationStore: ...

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
        return self.sessions.get_or_create(session_id, user_id=user_id, agent=agent)

    def _append(
        self, session_id: str, role: str, content: Any, metadata: dict[str, Any] | None
    ) -> Message:
        run_id = self._lifecycle().runs.get(session_id)
        text = content if isinstance(content, (str, list)) else as_text(content)
        meta = json_safe(dict(metadata or {}))
        try:
            return self.messages.append(session_id, role, text, meta, run_id=run_id)
        except NotFound:
            self._ensure_session(session_id)
            return self.messages.append(session_id, role, text, meta, run_id=run_id)

    # -- the protocol -------------------------------------------------------------------
    def on_agent_start(
        self,
        agent_name: str,
        session_id: str,
        user_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> list[Message]:
        """Get or create the session; returns its previous messages so the agent can resume."""
        info = self._ensure_session(session_id, agent=agent_name, user_id=user_id)
        if metadata:
            self.sessions.update(info.id, metadata={"agent_metadata": json_safe(metadata)})
        self.events.emit(Event("agent_start", session_id=info.id, agent=agent_name or ""), info)
        return list(self.messages.iterate(info.id))

    def on_user_message(
        self, session_id: str, content: str, metadata: dict[str, Any] | None = None
    ) -> None:
        self._append(session_id, "user", content, metadata)

    def on_agent_message(
        self, session_id: str, content: str, metadata: dict[str, Any] | None = None
    ) -> None:
        self._append(session_id, "assistant", content, metadata)

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
        self._lifecycle().runs[session_id] = run_id

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
        book = self._lifecycle()
        if book.runs.get(session_id) == run_id:
            del book.runs[session_id]
        if status in {"error", "failed"}:
            self.events.emit(
                Event(
                    "error",
                    session_id=session_id,
                    status=status,
                    attributes={"run_id": run_id, "error": str(error or "")},
                )
            )

    def get_runs(self, session_id: str, limit: int | None = None) -> list[Run]:
        return self.runs.list(session_id, limit=limit)

    def export_session(self, session_id: str) -> dict[str, Any]:
        return self.sessions.export(session_id)

    def import_session(self, data: dict[str, Any]) -> str:
        return self.sessions.import_session(data).id

    # -- tracing ------------------------------------------------------------------------
    def on_trace_start(
        self,
        trace_id: str,
        session_id: str | None = None,
        run_id: str | None = None,
        agent_name: str | None = None,
        user_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        _check_span_labels(session_id=session_id, user_id=user_id, run_id=run_id)
        _check_span_text(agent_name, "agent_name", optional=True)
        attributes = json_safe(dict(metadata or {}))
        attributes.update({k: v for k, v in (("run_id", run_id), ("agent_name", agent_name)) if v})
        root = Span(
            trace_id=check_id(trace_id, "trace id"),
            name=agent_name or "trace",
            id=trace_id,
            session_id=session_id,
            user_id=user_id,
            attributes=attributes,
        )
        self.conversations.save_span(root)
        self._lifecycle().remember(root)

    def on_trace_end(
        self, trace_id: str, status: str = "ok", metadata: dict[str, Any] | None = None
    ) -> None:
        _check_span_text(status, "status")
        root = self._span(trace_id)
        root.status = status
        root.ended_at = utcnow()
        root.attributes = {**root.attributes, **json_safe(dict(metadata or {}))}
        self.conversations.save_span(root)
        self._lifecycle().forget(trace_id)

    def on_span_start(
        self,
        span_id: str,
        trace_id: str,
        name: str,
        parent_span_id: str | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> None:
        _check_span_text(name, "span name")
        _check_span_labels(parent_span_id=parent_span_id)
        root = self._span(trace_id)
        span = Span(
            trace_id=trace_id,
            name=name,
            id=check_id(span_id, "span id"),
            parent_id=parent_span_id or trace_id,
            session_id=root.session_id,
            user_id=root.user_id,
            attributes=json_safe(dict(attributes or {})),
        )
        self.conversations.save_span(span)
        self._lifecycle().remember(span)

    def on_span_end(
        self, span_id: str, status: str = "ok", attributes: dict[str, Any] | None = None
    ) -> None:
        _check_span_text(status, "status")
        span = self._span(span_id)
        span.status = status
        span.ended_at = utcnow()
        span.attributes = {**span.attributes, **json_safe(dict(attributes or {}))}
        self.conversations.save_span(span)
        self._lifecycle().forget(span_id)

    def _span(self, span_id: str) -> Span:
        """A span this process started, else read back from the store (NotFound if none)."""
        cached = self._lifecycle().spans.get(span_id)
        if cached is not None:
            return replace(cached)
        return self.conversations.get_span(check_id(span_id, "span id"))

    def get_traces(
        self, session_id: str | None = None, user_id: str | None = None, limit: int | None = None
    ) -> list[Trace]:
        """Traces (newest ``limit``, oldest first) with all their spans."""
        if limit is not None:
            check_int(limit, "limit", 0)
        for value, what in ((session_id, "session id"), (user_id, "user id")):
            if value is not None:
                check_id(value, what)
        roots = self.conversations.list_spans(
            session_id=session_id, user_id=user_id, roots_only=True, limit=limit
        )
        traces = []
        for root in roots:
            spans = [
                s for s in self.conversations.list_spans(trace_id=root.trace_id) if s.id != root.id
            ]
            attrs = dict(root.attributes)
            run_id, agent = attrs.get("run_id"), attrs.get("agent_name")
            traces.append(
                Trace(
                    trace_id=root.trace_id,
                    session_id=root.session_id,
                    user_id=root.user_id,
                    run_id=run_id if isinstance(run_id, str) else None,
                    agent_name=agent if isinstance(agent, str) else None,
                    status=root.status,
                    started_at=root.started_at,
                    ended_at=root.ended_at,
                    metadata=attrs,
                    spans=spans,
                )
            )
        return traces

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


class _Bookkeeping:
    """Which run is open per session and which spans this process started."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runs: dict[str, str] = {}
        self.spans: OrderedDict[str, Span] = OrderedDict()

    def remember(self, span: Span) -> None:
        with self.lock:
            self.spans[span.id] = span
            while len(self.spans) > _SPAN_CACHE:
                self.spans.popitem(last=False)

    def forget(self, span_id: str) -> None:
        with self.lock:
            self.spans.pop(span_id, None)


def _int(metrics: dict[str, Any], *names: str) -> int | None:
    for name in names:
        value = metrics.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _check_span_labels(**ids: str | None) -> None:
    for name, value in ids.items():
        if value is not None:
            check_id(value, name.replace("_", " "))


def _check_span_text(value: object, what: str, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be a string, not {type(value).__name__}")
    check_text(value, what)
