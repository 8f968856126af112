"""A database migrated by a newer praisondb (a revision this one does not ship): every
command says so and says to upgrade praisondb, never "run db upgrade" or a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from praisondb import ConfigError, PraisonDB
from praisondb.stores.sql import migrate
from praisondb.stores.sql.schema import VERSION_TABLE
from tests.backends import TestBackend

FUTURE = "9999_from_the_future"


@pytest.fixture
def future_db(backend: TestBackend, tmp_path: Path) -> Iterator[str]:
    """A private database of each SQL backend, left at a revision from a newer praisondb."""
    with backend.factory(tmp_path) as url:
        migrate.upgrade(url)
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            version = sa.table(VERSION_TABLE, sa.column("version_num"))
            conn.execute(sa.update(version).values(version_num=FUTURE))
        engine.dispose()
        yield url


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "praisondb", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )


def _says_upgrade_praisondb(text: str) -> None:
    assert f"{FUTURE}, newer than this praisondb knows" in text, text
    assert "upgrade praisondb" in text and "run `praisondb db upgrade`" not in text, text
    assert "Traceback" not in text and "alembic" not in text.lower(), text


@pytest.mark.backends("sqlite", "postgres", "mysql")
@pytest.mark.parametrize(
    "command", [["db", "upgrade"], ["db", "downgrade", "base", "--yes"], ["db", "current"]]
)
def test_cli(future_db: str, command: list[str]) -> None:
    out = _cli(*command, "--url", future_db)
    assert out.returncode != 0
    _says_upgrade_praisondb(out.stderr)
    if command == ["db", "current"]:
        assert f"{FUTURE} (newer than head {migrate.head()}" in out.stdout


@pytest.mark.backends("sqlite", "postgres", "mysql")
def test_api(future_db: str) -> None:
    assert migrate.current(future_db) == FUTURE
    for call in (
        lambda: migrate.upgrade(future_db),
        lambda: migrate.downgrade(future_db, "base"),
        lambda: PraisonDB(future_db, auto_migrate=True).ping(),
        lambda: PraisonDB(future_db).ping(),
    ):
        with pytest.raises(ConfigError) as caught:
            call()
        _says_upgrade_praisondb(str(caught.value))
    assert migrate.current(future_db) == FUTURE, "the database was changed"
