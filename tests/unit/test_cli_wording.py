"""Library messages name Python keywords; when they reach the CLI they name its flags.

Each test drives the real CLI against a real store, and checks the Python API still
speaks Python (the rewrite happens at the CLI boundary, not in the message).
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from praisondb import PraisonDB, SchemaOutOfDate, transfer
from praisondb.analytics import check_read_only
from praisondb.cli import cli
from praisondb.cli.wording import REWRITES
from praisondb.errors import ValidationError
from praisondb.stores import open_conversation_store
from praisondb.stores.sql import migrate
from praisondb.transfer.archive import ArchiveError
from tests.unit.sql_fixtures import server_url  # noqa: F401
from tests.unit.test_sql_migrations import newer_praisondb  # noqa: F401

PACKAGE = Path(__file__).resolve().parents[2] / "praisondb"
KEYWORD = re.compile(r"\b[a-z_]+=(?:True|False|'[a-z]+')")


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def _output(result: Result) -> str:
    """What the user sees: stdout, stderr, and a library error (printed by ``main``)."""
    error = result.exception
    shown = "" if error is None or isinstance(error, SystemExit) else f"error: {error}"
    return result.stdout + (result.stderr or "") + shown


def _messages(path: Path) -> Iterator[tuple[int, str]]:
    """String literals of a module that are not docstrings."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
        ):
            yield node.lineno, node.value


def test_every_python_keyword_in_a_message_has_a_cli_wording() -> None:
    """A new ``pass x=True`` in an error or note must get its flag in cli/wording.py."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).parts
        if "cli" in parts or "integrations" in parts:  # the CLI never drives a framework face
            continue
        for line, text in _messages(path):
            if KEYWORD.search(text):
                found.append((f"{path.name}:{line}", text))
                assert any(r.pattern.search(text) for r in REWRITES), (path, line, text)
    assert len(found) >= 5, found  # the scan really sees the messages


def _outdated_sqlite(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    migrate.upgrade(url, "0001")
    return url


@pytest.mark.usefixtures("newer_praisondb")
def test_schema_out_of_date_names_auto_migrate_only_where_the_command_has_it(
    tmp_path: Path,
) -> None:
    outdated = _outdated_sqlite(tmp_path)
    with pytest.raises(SchemaOutOfDate, match=r"pass auto_migrate=True"):
        open_conversation_store(outdated)  # the Python API keeps its own wording

    source = f"sqlite:///{tmp_path / 'src.db'}"
    with PraisonDB(source, auto_migrate=True) as db:
        db.sessions.create("s1")
    copied = run("copy", source, outdated)
    assert copied.exit_code == 2, _output(copied)
    assert "(or add --auto-migrate)" in _output(copied)
    assert "auto_migrate" not in _output(copied)

    listed = run("sessions", "list", "--url", outdated)
    assert isinstance(listed.exception, SchemaOutOfDate), _output(listed)
    assert "praisondb db upgrade" in _output(listed)
    assert "auto_migrate" not in _output(listed) and "--auto-migrate" not in _output(listed)


def test_an_empty_server_database_names_the_flag(server_url: str, tmp_path: Path) -> None:  # noqa: F811
    source = f"sqlite:///{tmp_path / 'src.db'}"
    with PraisonDB(source) as db:
        db.sessions.create("s1")
    refused = run("copy", source, server_url)
    assert refused.exit_code == 2, _output(refused)
    assert "--auto-migrate" in _output(refused) and "auto_migrate=True" not in _output(refused)
    shown = run("sessions", "show", "s1", "--url", server_url)
    assert isinstance(shown.exception, SchemaOutOfDate), _output(shown)
    assert "praisondb db upgrade" in _output(shown) and "auto_migrate" not in _output(shown)
    assert run("copy", source, server_url, "--auto-migrate").exit_code == 0


def test_read_only_query_names_write(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"pass readonly=False"):
        check_read_only("INSERT INTO t VALUES (1)")
    url = f"chdb://{tmp_path / 'analytics'}"
    refused = run("analytics", "query", "--analytics-url", url, "INSERT INTO t VALUES (1)")
    assert isinstance(refused.exception, ValidationError), _output(refused)
    assert "add --write to run writes" in _output(refused)
    assert "readonly" not in _output(refused)


def test_the_installed_command_prints_the_flag_and_exits_2(tmp_path: Path) -> None:
    """The entry point (not only click's test runner) shows the reworded error."""
    url = f"chdb://{tmp_path / 'analytics'}"
    proc = subprocess.run(
        [sys.executable, "-m", "praisondb", "analytics", "query", "DROP TABLE x"],
        capture_output=True,
        text=True,
        env={**os.environ, "PRAISONDB_ANALYTICS_URL": url},
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "add --write to run writes" in proc.stderr and "readonly" not in proc.stderr


@pytest.fixture
def stores(tmp_path: Path) -> tuple[str, str]:
    source, target = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    with PraisonDB(source) as db:
        db.sessions.create("s1")
        db.messages.append("s1", "user", "from the source")
    with PraisonDB(target) as db:
        db.sessions.create("s1", user_id="someone-else")
        db.messages.append("s1", "user", "not from the source")
    return source, target


def test_conflict_abort_names_on_conflict_flag(stores: tuple[str, str]) -> None:
    source, target = stores
    failed = run("copy", source, target, "--on-conflict", "fail")
    assert failed.exit_code == 2
    assert "(--on-conflict fail)" in _output(failed) and "on_conflict=" not in _output(failed)


def test_incremental_note_names_full(stores: tuple[str, str]) -> None:
    source, target = stores
    transfer.copy(source, target, on_conflict="overwrite")
    api = transfer.copy(source, target)
    assert any("pass full=True" in note for note in api.notes), api.notes
    again = run("copy", source, target)
    assert again.exit_code == 0, _output(again)
    assert "add --full to re-check every session" in again.stdout
    assert "full=True" not in again.stdout


def test_damaged_archive_names_skip_damaged(stores: tuple[str, str], tmp_path: Path) -> None:
    source, _ = stores
    path = tmp_path / "dump.jsonl"
    transfer.export(source, path)
    lines = path.read_bytes().splitlines(keepends=True)
    lines[2] = b'{"type":"message", broken\n'
    path.write_bytes(b"".join(lines))
    target = f"sqlite:///{tmp_path / 'c.db'}"
    with pytest.raises(ArchiveError, match="pass skip_damaged=True"):
        transfer.import_(path, target)
    refused = run("import", str(path), target)
    assert refused.exit_code == 2
    assert "add --skip-damaged to import" in _output(refused)
    assert "skip_damaged" not in _output(refused)
