"""An SQLite path in a missing directory is a ConfigError naming that directory, from the
API and from the CLI (one line, no traceback), and no directory is created."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from praisondb import ConfigError, PraisonDB
from praisondb.stores.sql import migrate


def _urls(tmp_path: Path) -> list[tuple[str, Path]]:
    missing = tmp_path / "no" / "such" / "dir"
    return [
        (f"sqlite:///{missing}/app.db", missing),  # absolute: sqlite:////tmp/...
        (str(missing / "app.sqlite"), missing),  # a bare path
    ]


def test_api_names_the_missing_directory(tmp_path: Path) -> None:
    for url, missing in _urls(tmp_path):
        with pytest.raises(ConfigError) as caught, PraisonDB(url) as db:
            db.ping()
        assert f"the directory {missing} does not exist" in str(caught.value)
        with pytest.raises(ConfigError, match="does not exist"):
            migrate.current(url)
    assert not (tmp_path / "no").exists(), "a directory was created silently"


def test_a_file_where_the_directory_should_be(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("x")
    with (
        pytest.raises(ConfigError, match="is not a directory"),
        PraisonDB(f"sqlite:///{tmp_path}/plain/app.db") as db,
    ):
        db.ping()


@pytest.mark.parametrize(
    "command", [["doctor"], ["sessions", "list"], ["db", "current"], ["db", "upgrade"]]
)
def test_cli_prints_one_clean_line(tmp_path: Path, command: list[str]) -> None:
    url, missing = _urls(tmp_path)[0]
    out = subprocess.run(
        [sys.executable, "-m", "praisondb", *command, "--url", url],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert out.returncode != 0
    assert "Traceback" not in out.stderr and "sqlalchemy" not in out.stderr.lower(), out.stderr
    assert f"the directory {missing} does not exist" in out.stderr, out.stderr
    assert not (tmp_path / "no").exists()
