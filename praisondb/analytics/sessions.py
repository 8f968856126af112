"""``Session.analyse`` for many sessions at once, from the analytics events in ClickHouse.

The ``session_figures`` ready query groups the events by session; :func:`figures` turns
its rows into the dicts ``Session.analyse`` returns, with the same definitions (see
:mod:`praisondb.core.analysis`), so both agree on the same data. Two differences, both
because ClickHouse never holds message text there are no ``topics``; and a run counts
once it has started (its ``run_start`` event; ``backfill`` writes finished runs only),
its tokens and latency once it ended.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import date, datetime, timezone
from typing import Any

from ..core.analysis import FAILED, satisfaction
from ..model import ROLES
from .queries import QueryResult, ReadyQueries

__all__ = ["FAILED", "figures", "session_figures"]


def _time(value: Any) -> datetime | None:
    if not isinstance(value, datetime) or value.year <= 1970:  # minIf over no row: the epoch
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def _ms(value: Any) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(float(value), 3)


def _figures(row: dict[str, Any]) -> dict[str, Any]:
    started, ended = _time(row["started_at"]), _time(row["ended_at"])
    runs, errors = int(row["runs"]), int(row["errors"])
    input_tokens, output_tokens = int(row["input_tokens"]), int(row["output_tokens"])
    return {
        "session_id": row["session_id"],
        "messages": int(row["messages"]),
        "interactions": {role: int(row[f"{role}_messages"]) for role in sorted(ROLES)},
        "agents": dict(sorted(Counter(row["agents"]).items())),
        "started_at": started.isoformat() if started else None,
        "ended_at": ended.isoformat() if ended else None,
        "duration_s": round((ended - started).total_seconds(), 3) if started and ended else None,
        "tool_calls": int(row["tool_messages"]),
        "tools": dict(sorted(Counter(row["tools"]).items())),
        "runs": runs,
        "tokens": {
            "input": input_tokens,
            "output": output_tokens,
            "total": input_tokens + output_tokens,
        },
        "latency_ms": {"p50": _ms(row["p50_ms"]), "p95": _ms(row["p95_ms"])},
        "errors": errors,
        "error_rate": round(errors / runs, 4) if runs else None,
        "satisfaction": satisfaction([float(s) for s in row["scores"]]),
    }


def figures(result: QueryResult) -> list[dict[str, Any]]:
    """The rows of a ``session_figures`` result as ``Session.analyse`` dicts (no topics)."""
    return [_figures(row) for row in result.as_dicts()]


def session_figures(
    queries: ReadyQueries,
    since: date | datetime | str | None = None,
    until: date | datetime | str | None = None,
    *,
    agent: str | None = None,
    session_id: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """``Session.analyse`` figures (without topics) of the sessions started in the period."""
    result = queries.session_figures(since, until, agent=agent, session_id=session_id, limit=limit)
    return figures(result)
