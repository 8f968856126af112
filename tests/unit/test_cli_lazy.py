"""The CLI loads a command's module only when that command runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click

from praisondb.cli import COMMANDS, cli

HEAVY = ["sqlalchemy", "alembic", "psycopg", "pymysql", "pymongo", "redis", "chdb"]
COMMAND_MODULES = sorted(
    {f"praisondb.cli.{target.partition(':')[0]}" for target, _ in COMMANDS.values()}
)
PROBE = """
import json, sys
from praisondb.cli import main
watched = json.loads(sys.argv[1])
sys.argv = ["praisondb", *sys.argv[2:]]
try:
    main()
except SystemExit:
    pass
print("LOADED " + json.dumps(sorted(m for m in watched if m in sys.modules)), file=sys.stderr)
"""


def _loaded(*args: str) -> tuple[list[str], str]:
    """Which of the heavy libraries and command modules a CLI run imported, and its output."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(HEAVY + COMMAND_MODULES), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    line = next(x for x in out.stderr.splitlines() if x.startswith("LOADED "))
    return json.loads(line.removeprefix("LOADED ")), out.stdout


def test_the_listing_matches_every_command_s_own_help() -> None:
    ctx = click.Context(cli)
    for name, (_target, summary) in COMMANDS.items():
        command = cli.get_command(ctx, name)
        assert command is not None and command.name == name
        assert command.get_short_help_str(1000) == summary, name
    assert cli.list_commands(ctx) == sorted(COMMANDS)


def test_help_loads_no_command_module_and_no_database_library() -> None:
    loaded, stdout = _loaded("--help")
    assert "sessions" in stdout and "copy" in stdout
    assert loaded == []


def test_sessions_list_on_a_json_store_loads_no_sql_library(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    loaded, _ = _loaded("sessions", "list", "--url", f"json://{store}")
    assert loaded == ["praisondb.cli.sessions"]


def test_the_probe_sees_what_a_command_loads(tmp_path: Path) -> None:
    """The check above can fail: an SQLite listing does load SQLAlchemy."""
    loaded, _ = _loaded("sessions", "list", "--url", f"sqlite:///{tmp_path / 'x.db'}")
    assert "sqlalchemy" in loaded and "praisondb.cli.sessions" in loaded
