"""``praisondb sessions analyse``: the figures of ``Session.analyse``, as JSON or a table."""

from __future__ import annotations

from pathlib import Path

import orjson
from click.testing import CliRunner

from praisondb import PraisonDB
from praisondb.cli import cli


def test_sessions_analyse_prints_the_session_figures(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'an.db'}"
    with PraisonDB(url) as db:
        s = db.session("trip", user_id="u1")
        s.add_user("Plan a trip to Lisbon, with food in Lisbon")
        s.add_assistant("Lisbon food: try Alfama", agent="planner")
        s.add_tool("3 flights", tool_name="flights")
        s.feedback(0.8, comment="useful")
        expected = s.analyse()
    runner = CliRunner()
    as_json = runner.invoke(cli, ["sessions", "analyse", "trip", "--url", url, "--json"])
    assert as_json.exit_code == 0, as_json.output
    assert orjson.loads(as_json.stdout) == expected
    assert expected["satisfaction"] == {"count": 1, "mean": 0.8}
    table = runner.invoke(cli, ["sessions", "analyse", "trip", "--url", url])
    assert table.exit_code == 0, table.output
    lines = {line.split()[0]: line.split()[1:] for line in table.output.splitlines()[1:]}
    assert lines["interactions"] == ["assistant=1", "system=0", "tool=1", "user=1"]
    assert lines["agents"] == ["planner=1"] and lines["tools"] == ["flights=1"]
    assert lines["topics"][0] == "lisbon,"
    assert lines["latency_ms"] == ["p50=-", "p95=-"]  # no runs: nothing invented
    missing = runner.invoke(cli, ["sessions", "analyse", "nope", "--url", url])
    assert missing.exit_code != 0 and "nope" in str(missing.exception)
