"""The README stays true: its SQLite examples run, and every command it names exists."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import click
import pytest

from praisondb.cli import cli

README = (Path(__file__).parents[2] / "README.md").read_text()
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)
RUNNABLE = [block for block in PYTHON_BLOCKS if 'PraisonDB("sqlite:///app.db")' in block]


def test_there_are_runnable_examples() -> None:
    assert len(RUNNABLE) >= 2


@pytest.mark.parametrize("block", RUNNABLE, ids=[f"block{i}" for i in range(len(RUNNABLE))])
def test_sqlite_examples_run(block: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    script = tmp_path / "example.py"
    script.write_text(block)
    runpy.run_path(str(script))
    assert (tmp_path / "app.db").exists()


def test_every_command_in_the_readme_exists() -> None:
    named = set(re.findall(r"`praisondb ([a-z]+)", README))
    assert named >= {
        "doctor",
        "sessions",
        "db",
        "copy",
        "export",
        "import",
        "verify",
        "analytics",
        "demo",
    }
    commands = set(cli.list_commands(click.Context(cli)))
    assert named <= commands, named - commands
