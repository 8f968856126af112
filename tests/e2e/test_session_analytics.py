"""``praisondb analytics sessions``: the figures of ``Session.analyse`` for many sessions,
from ClickHouse (embedded chdb), equal to the per-session ones on the same data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from praisondb import PraisonDB
from praisondb.analytics.sessions import session_figures
from praisondb.cli import cli


def _conversation(db: PraisonDB) -> list[str]:
    """Two sessions written through the public API only: agents, tools, runs (one failing,
    one with token usage), feedback; and a third with a single message."""
    trip = db.session("trip", user_id="u1", agent="travel")

    def planner(session: Any, prompt: str) -> str:
        session.add_tool("3 flights", tool_name="flights", agent="planner")
        session.add_tool("1 hotel", tool_name="hotels", agent="planner")
        return f"Lisbon plan for: {prompt}"

    def critic(session: Any, prompt: str) -> str:
        raise RuntimeError("critic is offline")

    trip.add_system("You plan trips.")
    trip.run_agent("planner", "a spring trip to Lisbon with good food", planner)
    with pytest.raises(RuntimeError, match="offline"):
        trip.run_agent("critic", "review the plan", critic)
    run = db.runs.start("trip", model="m1")
    trip.add_assistant("Booked.", agent="planner", run_id=run.id)
    db.runs.end(run.id, input_tokens=120, output_tokens=40)
    trip.feedback(1)
    trip.feedback(0.25, comment="too pricey")
    chat = db.session("chat", user_id="u2", agent="support")
    chat.add_user("hello")
    db.session("empty", user_id="u3")
    return ["trip", "chat", "empty"]


def test_clickhouse_figures_equal_the_per_session_ones(tmp_path: Path) -> None:
    analytics_url = f"chdb://{tmp_path / 'analytics'}"
    with PraisonDB(f"sqlite:///{tmp_path / 'c.db'}", analytics_url=analytics_url) as db:
        ids = _conversation(db)
        expected = {sid: db.session(sid).analyse() for sid in ids}
        assert db.analytics is not None
        db.analytics.flush()
        rows = session_figures(db.analytics)
        one = session_figures(db.analytics, session_id="trip")
        support = session_figures(db.analytics, agent="support")
    for figures in expected.values():
        figures.pop("topics")
    assert {r["session_id"]: r for r in rows} == expected
    trip = expected["trip"]
    assert one == [trip] and [r["session_id"] for r in support] == ["chat"]
    # the data behind the equality is what the conversation says, not zeros
    assert trip["runs"] == 3 and trip["errors"] == 1 and trip["error_rate"] == 0.3333
    assert trip["tokens"] == {"input": 120, "output": 40, "total": 160}
    assert trip["tools"] == {"flights": 1, "hotels": 1}
    assert trip["agents"] == {"critic": 1, "planner": 5}
    assert trip["satisfaction"] == {"count": 2, "mean": 0.625}
    assert trip["latency_ms"]["p50"] is not None and expected["chat"]["latency_ms"]["p50"] is None

    runner = CliRunner()
    env = {"PRAISONDB_ANALYTICS_URL": analytics_url}
    result = runner.invoke(cli, ["analytics", "sessions", "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert {r["session_id"]: r for r in orjson.loads(result.output)} == expected
    page_path = tmp_path / "sessions.html"
    result = runner.invoke(cli, ["analytics", "sessions", "--html", str(page_path)], env=env)
    assert result.exit_code == 0, result.output
    page = page_path.read_text()
    assert "Per-session figures" in page and "trip" in page and "<script" not in page
    table = runner.invoke(cli, ["analytics", "sessions", "--session", "chat"], env=env)
    assert table.exit_code == 0 and "chat" in table.output and "trip" not in table.output
