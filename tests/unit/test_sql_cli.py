"""``praisondb db upgrade|downgrade|current|history`` on SQLite, PostgreSQL and MariaDB,
passwords redacted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from praisondb import BackendUnavailable, NotFound, PraisonDB
from praisondb.cli import cli
from praisondb.stores.sql import dialects, migrate
from praisondb.urls import parse_url
from tests.unit.sql_fixtures import any_sql_url, postgres_url  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
SECRET = "Cli-S3cret-Pw"


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, ["db", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cli.db'}"
    pg: str = request.getfixturevalue("postgres_url")
    return pg.replace("postgres@", f"postgres:{SECRET}@", 1)  # trust auth ignores it


def test_upgrade_current_history(url: str) -> None:
    head = migrate.head()
    assert "empty" in run("current", "--url", url)
    assert "(current)" not in run("history", "--url", url)
    assert f"upgraded (empty) -> {head}" in run("upgrade", "--url", url)
    assert f"already at {head}" in run("upgrade", "--url", url)
    assert f"{head} (head)" in run("current", "--url", url)
    history = run("history", "--url", url)
    assert history.startswith("<base> -> 0001") and f"-> {head} (head, current)" in history
    assert len(history.splitlines()) == len(migrate.history())  # one line per revision
    assert migrate.check(url) == []
    for output in (run("current", "--url", url), history):
        assert SECRET not in output


def test_url_is_printed_redacted(postgres_url: str) -> None:  # noqa: F811
    secret_url = postgres_url.replace("postgres@", f"postgres:{SECRET}@", 1)
    output = run("upgrade", "--url", secret_url) + run("current", "--url", secret_url)
    assert SECRET not in output and "postgres:***@" in output


def test_url_comes_from_the_environment(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'env.db'}"
    result = CliRunner(env={"PRAISONDB_DATABASE_URL": url}).invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert migrate.current(url) == migrate.head()


def test_offline_sql_touches_nothing(postgres_url: str) -> None:  # noqa: F811
    output = run("upgrade", "--sql", "--url", postgres_url)
    assert "CREATE TABLE praisondb_sessions" in output and "JSONB" in output
    assert migrate.current(postgres_url) is None


def test_history_offline_needs_no_database() -> None:
    output = run("history", "--offline")
    assert f"-> {migrate.head()} (head)" in output and "current" not in output


def test_downgrade_needs_yes_then_drops_everything(any_sql_url: str) -> None:  # noqa: F811
    url = any_sql_url
    head = migrate.head()
    with PraisonDB(url, auto_migrate=True) as db:
        db.messages.append(db.sessions.create("kept").id, "user", "hello")
    refused = CliRunner().invoke(cli, ["db", "downgrade", "base", "--url", url])
    assert refused.exit_code == 2 and "--yes" in refused.output
    with PraisonDB(url) as db:  # nothing happened
        assert [m.content for m in db.messages.list("kept")] == ["hello"]

    assert f"downgraded {head} -> (empty)" in run("downgrade", "base", "--yes", "--url", url)
    assert migrate.current(url) is None
    assert "already at (empty)" in run("downgrade", "base", "--yes", "--url", url)
    engine = sa.create_engine(dialects.driver_url(parse_url(url)))
    try:
        left = [t for t in sa.inspect(engine).get_table_names() if t.startswith("praisondb_")]
    finally:
        engine.dispose()
    assert left == ["praisondb_alembic_version"]  # Alembic keeps its (empty) version table

    assert f"upgraded (empty) -> {head}" in run("upgrade", "--url", url)
    with PraisonDB(url) as db:
        assert db.sessions.count() == 0
        with pytest.raises(NotFound):
            db.sessions.get("kept")
    assert migrate.check(url) == []


def test_downgrade_to_an_unknown_revision_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'unknown.db'}"
    run("upgrade", "--url", url)
    result = CliRunner().invoke(cli, ["db", "downgrade", "nope", "--yes", "--url", url])
    assert result.exit_code != 0 and "unknown schema revision 'nope'" in str(result.exception)
    assert migrate.current(url) == migrate.head()


def test_offline_downgrade_prints_the_drops(postgres_url: str) -> None:  # noqa: F811
    output = run("downgrade", "--sql", f"{migrate.head()}:base", "--url", postgres_url)
    assert "DROP TABLE praisondb_sessions" in output
    assert migrate.current(postgres_url) is None


def test_every_db_command_has_help() -> None:
    for command in ("upgrade", "downgrade", "current", "history"):
        output = run(command, "--help")
        assert "--url" in output and len(output.splitlines()) > 3


def test_unreachable_database_is_a_clean_error_without_the_password() -> None:
    url = f"postgresql://postgres:{SECRET}@127.0.0.1:1/nowhere?connect_timeout=2"
    with pytest.raises(BackendUnavailable) as caught:
        CliRunner().invoke(cli, ["db", "current", "--url", url], catch_exceptions=False)
    assert SECRET not in str(caught.value)
    proc = subprocess.run(
        [sys.executable, "-m", "praisondb", "db", "current", "--url", url],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") or "\nerror: " in proc.stderr
    assert SECRET not in proc.stderr + proc.stdout and "***" in proc.stderr
