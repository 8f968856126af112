"""PraisonAI's tracing hooks: traces and spans as stored rows a new process can query.

A trace is stored as its root :class:`~praisondb.model.Span` whose id is the trace id and
whose ``parent_id`` is None; spans started without a parent hang under that root.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ...coerce import json_safe
from ...errors import ValidationError
from ...model import Span, utcnow
from ...validation import check_id, check_int, check_text

if TYPE_CHECKING:
    from ...stores.base import ConversationStore

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


class TracingMixin:
    """``on_trace_*``/``on_span_*``/``get_traces`` on top of the conversation store."""

    if TYPE_CHECKING:

        @property
        def conversations(self) -> ConversationStore: ...

    def _open_spans(self) -> _OpenSpans:
        spans: _OpenSpans | None = self.__dict__.get("_praisonai_spans")
        if spans is None:
            spans = self.__dict__.setdefault("_praisonai_spans", _OpenSpans())
        return spans

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
        self._open_spans().remember(root)

    def on_trace_end(
        self, trace_id: str, status: str = "ok", metadata: dict[str, Any] | None = None
    ) -> None:
        _check_span_text(status, "status")
        root = self._span(trace_id)
        root.status = status
        root.ended_at = utcnow()
        root.attributes = {**root.attributes, **json_safe(dict(metadata or {}))}
        self.conversations.save_span(root)
        self._open_spans().forget(trace_id)

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
        self._open_spans().remember(span)

    def on_span_end(
        self, span_id: str, status: str = "ok", attributes: dict[str, Any] | None = None
    ) -> None:
        _check_span_text(status, "status")
        span = self._span(span_id)
        span.status = status
        span.ended_at = utcnow()
        span.attributes = {**span.attributes, **json_safe(dict(attributes or {}))}
        self.conversations.save_span(span)
        self._open_spans().forget(span_id)

    def _span(self, span_id: str) -> Span:
        """A span this process started, else read back from the store (NotFound if none)."""
        cached = self._open_spans().spans.get(span_id)
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


class _OpenSpans:
    """The spans this process started and has not ended (nothing here is the record)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.spans: OrderedDict[str, Span] = OrderedDict()

    def remember(self, span: Span) -> None:
        with self.lock:
            self.spans[span.id] = span
            while len(self.spans) > _SPAN_CACHE:
                self.spans.popitem(last=False)

    def forget(self, span_id: str) -> None:
        with self.lock:
            self.spans.pop(span_id, None)


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
