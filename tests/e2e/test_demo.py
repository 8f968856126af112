"""`praisondb demo` is the README's main job: run it as a user would, then check what it stored."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from praisondb import PraisonDB

ACTIVITY = """
import sys, orjson
import orjson

from praisondb import PraisonDB
with PraisonDB("memory://", analytics_url=sys.argv[1]) as db:
    result = db.analytics.activity_by_day()
    (row,) = result.rows
    counts = dict(zip(result.columns, row, strict=True))
    counts.pop("day")
    sys.stdout.write(orjson.dumps(counts).decode())
"""


def _demo(directory: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    result = subprocess.run(
        [sys.executable, "-m", "praisondb.cli", "demo", "--dir", str(directory)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One demo run in a fresh directory, and what it printed: both tests start from it."""
    directory = tmp_path_factory.mktemp("demo")
    return directory, _demo(directory)


def test_demo_runs_on_embedded_defaults_and_stores_everything_it_prints(
    first_run: tuple[Path, str],
) -> None:
    directory, out = first_run
    _check_demo(out, directory)


def test_rerunning_the_demo_counts_nothing_twice(
    first_run: tuple[Path, str], tmp_path: Path
) -> None:
    # the re-run works on a copy of the first run's directory (its SQLite file, its
    # analytics), so the first run is not repeated here and stays as it was for the test above
    directory = tmp_path / "demo"
    shutil.copytree(first_run[0], directory, symlinks=True)  # chdb links its tables
    first = _check_demo(first_run[1], directory)
    again = _demo(directory)
    assert _check_demo(again, directory) == first
    assert "re-run: the previous demo's analytics" in again


def _check_demo(out: str, tmp_path: Path) -> dict[str, int]:
    """The demo's output and what it stored agree; returns the analytics counts."""
    assert "second process resumed 'demo:support' at message 4 (order 1042)" in out
    assert "remembered for u-42: 'Prefers a replacement over a refund" in out
    remembered = out.split("a new session 'demo:support-later' starts its context with:")[1]
    assert "- Prefers a replacement over a refund for damaged orders" in remembered
    assert "no ANTHROPIC_API_KEY" in out
    assert "second process resumed remote session" in out
    assert "checkpoint 'before-refund'" in out
    assert "restored 'demo:managed' to 'before-refund'" in out
    assert "Sessions and messages per day" in out

    with PraisonDB(f"sqlite:///{tmp_path / 'demo.db'}") as db:
        support = db.messages.list("demo:support")
        assert [m.text for m in db.memory().list(user_id="u-42").items] == [
            "Prefers a replacement over a refund for damaged orders"
        ]
        assert [m.seq for m in support] == [1, 2, 3, 4, 5, 6]
        assert support[-1].content == "Done: replacement for order #1042 ships tomorrow."
        runs = db.runs.list("demo:managed")
        assert len(runs) == 3 and all(r.status == "completed" for r in runs)
        branches = db.sessions.list(parent_id="demo:managed").items
        assert len(branches) == 2
        managed_sessions = db.sessions.count(agent=db.sessions.get("demo:managed").agent)
        appended = len(support) + db.messages.count("demo:managed")
        total_runs = sum(len(db.runs.list(i.id)) for i in db.sessions.iterate())
        stored_sessions = db.sessions.count()

    # every stored run and message reached the embedded ClickHouse, the second process's too
    # (read in a child process: chdb lets one process hold a directory, and the next demo
    # run must be able to open it)
    counts = orjson.loads(
        subprocess.run(
            [sys.executable, "-c", ACTIVITY, f"chdb://{tmp_path / 'analytics'}"],
            capture_output=True,
            check=True,
            timeout=300,
        ).stdout
    )
    assert counts["runs"] == total_runs == 3
    assert counts["sessions_started"] >= managed_sessions
    # branch copies are written with put_messages, not appended, so they are no events
    assert counts["messages"] >= appended
    counts["stored_sessions"] = stored_sessions
    return counts
