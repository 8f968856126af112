"""``praisondb doctor`` looks and creates nothing, keeps its table aligned and clean, and
reports ``schema`` as text on every backend."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import orjson
from click.testing import CliRunner, Result

from praisondb import PraisonDB
from praisondb.cli import cli

REPO = Path(__file__).resolve().parents[2]
DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1: fails after retries


def doctor(*args: str) -> Result:
    return CliRunner().invoke(cli, ["doctor", *args], color=True)


def _ready_sqlite(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'ok.db'}"
    with PraisonDB(url) as db:
        db.ping()
    return url


def test_failed_rows_line_up_with_the_header(tmp_path: Path) -> None:
    result = doctor("--url", _ready_sqlite(tmp_path), "--state-url", DEAD_REDIS)
    assert result.exit_code == 1
    lines = [click.unstyle(line) for line in result.stdout.splitlines()]
    header, ok_row, failed_row = lines
    assert "FAIL" in failed_row and "ok" in ok_row
    for column in ("status", "schema", "latency ms"):
        start = header.index(column)
        for row in (ok_row, failed_row):
            assert row[start - 2 : start] == "  " and row[start] != " ", (column, lines)


def test_retry_warnings_come_after_the_table(tmp_path: Path) -> None:
    """The real command with stdout and stderr in one stream, as a terminal shows them."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "praisondb",
            "doctor",
            "--url",
            _ready_sqlite(tmp_path),
            "--state-url",
            DEAD_REDIS,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:2] == ["role", "url"], proc.stdout  # the table comes first
    assert lines[1].startswith("conversations") and lines[2].startswith("state")
    below = lines[3:]
    assert below[0].startswith("state: BackendUnavailable"), proc.stdout
    retries = [line for line in below if "retry" in line]
    assert retries and all(line.startswith("state: warning: ") for line in retries)
    assert not any(line.startswith("WARNING") for line in lines)


def test_a_missing_sqlite_file_is_reported_not_created(tmp_path: Path) -> None:
    for path in (tmp_path / "missing.db", tmp_path / "no-such-dir" / "missing.db"):
        result = doctor("--url", f"sqlite:///{path}", "--json")
        assert result.exit_code == 1, result.output
        (report,) = orjson.loads(result.stdout)
        assert report["ok"] is False
        assert "praisondb db upgrade --url sqlite:///" in report["error"]
        assert not path.exists()
    assert list(tmp_path.iterdir()) == []  # no file, no directory


def test_an_empty_sqlite_file_is_not_migrated(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    result = doctor("--url", f"sqlite:///{path}")
    assert result.exit_code == 1
    assert "holds no praisondb schema" in result.stderr and "praisondb db upgrade" in result.stderr
    assert path.stat().st_size == 0  # not even a header written


def test_a_missing_json_store_is_reported_not_created(tmp_path: Path) -> None:
    result = doctor("--url", f"json://{tmp_path / 'store'}", "--json")
    assert result.exit_code == 1
    assert "no JSON store" in orjson.loads(result.stdout)[0]["error"]
    assert not (tmp_path / "store").exists()


def test_schema_is_text_on_every_backend(db: PraisonDB, backend_url: str) -> None:
    db.ping()  # the store exists (doctor would not create it)
    result = doctor("--url", backend_url, "--json")
    assert result.exit_code == 0, result.output
    (report,) = orjson.loads(result.stdout)
    assert report["schema"] is None or isinstance(report["schema"], str), report


def test_analytics_schema_is_text_too(tmp_path: Path) -> None:
    """ClickHouse counts migrations as integers; doctor prints them as text like the rest."""
    analytics = f"chdb://{tmp_path / 'analytics'}"
    created = subprocess.run(
        [sys.executable, "-m", "praisondb", "analytics", "upgrade", "--analytics-url", analytics],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=300,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "praisondb",
            "doctor",
            "--url",
            _ready_sqlite(tmp_path),
            "--analytics-url",
            analytics,
            "--json",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    schemas = {r["role"]: r["schema"] for r in orjson.loads(proc.stdout)}
    assert schemas["analytics"] == str(int(schemas["analytics"]))
    assert isinstance(schemas["conversations"], str)
