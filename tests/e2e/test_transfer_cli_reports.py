"""What ``praisondb copy`` reports: README's dry-run example is its real output, a dry run
prints no elapsed time posing as an estimate, and ``bytes`` is never a made-up 0."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner, Result

from praisondb import PraisonDB
from praisondb.cli import cli

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
NUMBER = re.compile(r"\d[\d,.]*")


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _readme_dry_run() -> list[str]:
    block = re.search(r"```\n(copy \S+ -> \S+  \(dry run: nothing written\)\n.*?)```", README, re.S)
    assert block, "README shows no dry-run output"
    return block.group(1).splitlines()


def _shape(line: str) -> str:
    """A line with its numbers and URLs made generic: the format, not the data."""
    line = re.sub(r"^copy \S+ -> \S+", "copy SRC -> DST", line)
    return re.sub(r"\b[KMGT]?iB\b", "UNIT", NUMBER.sub("N", line))


@pytest.fixture(params=["sqlite", "json"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    source = f"sqlite:///{tmp_path / 'source.db'}"
    target = (
        f"sqlite:///{tmp_path / 'target.db'}"
        if request.param == "sqlite"
        else f"json://{tmp_path / 'target'}"
    )
    with PraisonDB(source) as db:
        for s in range(3):
            db.sessions.create(f"s{s}", user_id="u1")
            db.messages.extend(f"s{s}", [{"role": "user", "content": f"m{i}"} for i in range(7)])
        db.state.set("theme", "dark", scope="user:u1")
    return source, target


def test_readme_dry_run_example_is_the_real_output(stores: tuple[str, str]) -> None:
    source, target = stores
    result = run("copy", source, target, "--dry-run")
    assert result.exit_code == 0, result.output
    printed = result.stdout.splitlines()
    assert [_shape(line) for line in printed] == [_shape(line) for line in _readme_dry_run()]
    assert "  messages: would move 21" in printed
    assert not re.search(r"\d+\.\ds\b", result.stdout), "a dry run prints no elapsed time"


def test_bytes_are_measured_or_absent_never_a_false_zero(stores: tuple[str, str]) -> None:
    source, target = stores
    planned = orjson.loads(run("copy", source, target, "--dry-run", "--json").stdout)
    assert planned["bytes"] > 0 and planned["messages_copied"] == 21
    assert planned["messages_per_second"] is None  # nothing moved: no rate

    copied = run("copy", source, target)
    assert copied.exit_code == 0, copied.output
    assert "  bytes:" not in copied.stdout  # not measured on a real copy, so not printed
    assert re.search(r"messages: moved 21 in \d+\.\ds \([\d,]+ msg/s\)", copied.stdout)
    again = orjson.loads(run("copy", source, target, "--json", "--full").stdout)
    assert again["bytes"] is None and again["verify"]["ok"] is True


def test_export_reports_the_bytes_it_wrote(stores: tuple[str, str], tmp_path: Path) -> None:
    source, _ = stores
    path = tmp_path / "dump.jsonl"
    report = orjson.loads(run("export", source, str(path), "--json").stdout)
    assert report["bytes"] == path.stat().st_size
    text = run("export", source, str(tmp_path / "again.jsonl")).stdout
    assert f"bytes: {path.stat().st_size:,} (" in text and "as archive JSON" in text
