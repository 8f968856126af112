"""Per-session analytics and context, computed from what the store holds.

``analyse`` reads the session's messages, runs and feedback records; nothing is
estimated. Where a figure has no data it is None (no runs: no latency, no error rate;
no feedback: no satisfaction), never a made-up default.

Definitions (``praisondb analytics sessions`` computes the same from ClickHouse):

* interactions: messages per role (every role present, 0 when absent); agents: messages
  per writing agent (multi-agent sessions);
* duration: first to last message, seconds;
* tool use: ``tool`` messages, per ``tool_name``;
* tokens and error rate: over runs (a run with status ``error`` or ``failed`` is an
  error); latency: run start to end in ms, p50/p95 with linear interpolation between the
  closest ranks (R-7, ClickHouse ``quantileExactInclusive``), over finished runs;
* topics: TF-IDF keywords of the user and assistant text (:mod:`.topics`);
* satisfaction: mean and count of the scores given to :meth:`feedback`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ValidationError
from ..ids import new_id
from ..model import AGENT_KEY, JSON, ROLES, Event, Message, Run, utcnow
from .arguments import check_free_text
from .state_view import StateView
from .topics import text_of, topics

if TYPE_CHECKING:
    from .repositories import DataPort

FEEDBACK_PREFIX = "praisondb:feedback:"
"""Feedback records live in the session's state under this key prefix."""
FAILED = frozenset({"error", "failed"})
TOPICS = 5
CONTEXT_WINDOW = 50
"""``build_context`` takes its recent topics from this many last messages."""


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile by linear interpolation between closest ranks (R-7), or None."""
    if not values:
        return None
    ordered = sorted(values)
    h = (len(ordered) - 1) * q
    low = math.floor(h)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (h - low) * (ordered[high] - ordered[low])


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def run_figures(runs: Sequence[Run]) -> dict[str, Any]:
    """Tokens, latency and error rate of a session's runs."""
    latencies = [
        (r.ended_at - r.started_at).total_seconds() * 1000 for r in runs if r.ended_at is not None
    ]
    input_tokens = sum(r.input_tokens for r in runs)
    output_tokens = sum(r.output_tokens for r in runs)
    errors = sum(1 for r in runs if r.status in FAILED)
    return {
        "runs": len(runs),
        "tokens": {
            "input": input_tokens,
            "output": output_tokens,
            "total": input_tokens + output_tokens,
        },
        "latency_ms": {
            "p50": _ms(percentile(latencies, 0.5)),
            "p95": _ms(percentile(latencies, 0.95)),
        },
        "errors": errors,
        "error_rate": round(errors / len(runs), 4) if runs else None,
    }


def satisfaction(scores: Sequence[float]) -> dict[str, Any] | None:
    if not scores:
        return None
    return {"count": len(scores), "mean": round(sum(scores) / len(scores), 4)}


def analyse_records(
    session_id: str, messages: Iterable[Message], runs: Sequence[Run], scores: Sequence[float]
) -> dict[str, Any]:
    """The figures of one session from its records (see the module docstring)."""
    roles: Counter[str] = Counter({role: 0 for role in sorted(ROLES)})
    agents: Counter[str] = Counter()
    tools: Counter[str] = Counter()
    texts: list[str] = []
    first = last = None
    count = 0
    for m in messages:
        count += 1
        first = first or m.created_at
        last = m.created_at
        roles[m.role] += 1
        agent = m.metadata.get(AGENT_KEY)
        if isinstance(agent, str):
            agents[agent] += 1
        if m.role == "tool":
            tools[str(m.metadata.get("tool_name") or "tool")] += 1
        elif m.role in ("user", "assistant"):
            texts.append(text_of(m.content))
    return {
        "session_id": session_id,
        "messages": count,
        "interactions": dict(roles),
        "agents": dict(sorted(agents.items())),
        "started_at": first.isoformat() if first else None,
        "ended_at": last.isoformat() if last else None,
        "duration_s": round((last - first).total_seconds(), 3) if first and last else None,
        "tool_calls": sum(tools.values()),
        "tools": dict(sorted(tools.items())),
        **run_figures(runs),
        "topics": topics(texts, TOPICS),
        "satisfaction": satisfaction(scores),
    }


def check_score(score: object) -> float:
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0 <= score <= 1:
        raise ValidationError(
            f"feedback score must be a number from 0 to 1, not {score!r} "
            "(for 1-5 stars pass stars / 5)"
        )
    if isinstance(score, float) and math.isnan(score):
        raise ValidationError("feedback score must be a number from 0 to 1, not NaN")
    return float(score)


class SessionAnalysis:
    """The analytics part of :class:`~praisondb.Session` (mixed into it)."""

    id: str
    user_id: str | None
    agent: str | None
    _db: DataPort

    flush: Callable[[], list[Message]]
    preferences: Callable[[], dict[str, JSON]]

    def _feedback(self) -> StateView:
        return StateView(self._db, f"session:{self.id}", FEEDBACK_PREFIX)

    def feedback(self, score: float, comment: str | None = None) -> dict[str, Any]:
        """Record explicit feedback on this session: ``score`` from 0 (bad) to 1 (good).

        The only source of ``analyse()["satisfaction"]``. Stored in the session's state
        (so export, copy and delete carry it) and sent to analytics as a ``feedback``
        event. Returns the record."""
        value = check_score(score)
        check_free_text(comment, "comment")
        record = {"score": value, "comment": comment, "at": utcnow().isoformat()}
        self._feedback().set(new_id(), record)
        self._db.events.emit(
            Event("feedback", session_id=self.id, status="ok", attributes={"score": value})
        )
        return record

    def feedback_records(self) -> list[dict[str, Any]]:
        """Every feedback record of this session, oldest first."""
        return [e.value for e in self._feedback().entries() if isinstance(e.value, dict)]

    def analyse(self) -> dict[str, Any]:
        """Interactions per role and agent, duration, tool use, tokens, latency p50/p95,
        error rate, topics and satisfaction of this session, as a JSON-safe dict."""
        self.flush()
        scores = [float(r["score"]) for r in self.feedback_records() if "score" in r]
        return analyse_records(
            self.id, self._db.messages.iterate(self.id), self._db.runs.list(self.id), scores
        )

    def build_context(self) -> dict[str, Any]:
        """What an agent should know when it picks this session up: the user's
        preferences, the recent topics, how long the session has run and how many
        messages it holds."""
        self.flush()
        recent = self._db.messages.list(self.id, last=CONTEXT_WINDOW)
        info = self._db.sessions.get(self.id)
        started = recent[0].created_at if recent else None
        if info.message_count > len(recent):  # older messages exist: start from the first
            first = self._db.messages.list(self.id, limit=1)
            started = first[0].created_at if first else started
        last = recent[-1].created_at if recent else None
        texts = [text_of(m.content) for m in recent if m.role in ("user", "assistant")]
        return {
            "session_id": self.id,
            "user_id": self.user_id,
            "agent": self.agent,
            "preferences": self.preferences() if self.user_id else {},
            "recent_topics": topics(texts, TOPICS),
            "interactions": info.message_count,
            "duration_s": round((last - started).total_seconds(), 3) if started and last else None,
            "last_active": last.isoformat() if last else None,
        }


__all__ = [
    "FEEDBACK_PREFIX",
    "SessionAnalysis",
    "analyse_records",
    "check_score",
    "percentile",
    "run_figures",
]
