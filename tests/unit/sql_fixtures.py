"""Private databases for the SQL unit tests (test_sql_*.py): one fresh database per test."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backends import mysql_backend, postgres_backend
from tests.conftest import require_all_backends

SERVERS = {"postgres": postgres_backend, "mysql": mysql_backend}


@contextlib.contextmanager
def server_database(kind: str, tmp: Path) -> Iterator[str]:
    """A fresh, empty database on the local server; skipped (or failed in CI) if it is down."""
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(SERVERS[kind](tmp))
        except Exception as exc:
            message = f"{kind} is unreachable: {type(exc).__name__}: {exc}"
            if require_all_backends():
                pytest.fail(message)
            pytest.skip(message)
        yield url


@pytest.fixture(params=["postgres", "mysql"])
def server_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with server_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def postgres_url(tmp_path: Path) -> Iterator[str]:
    with server_database("postgres", tmp_path) as url:
        yield url


@pytest.fixture
def mysql_url(tmp_path: Path) -> Iterator[str]:
    with server_database("mysql", tmp_path) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres", "mysql"])
def any_sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    with server_database(request.param, tmp_path) as url:
        yield url
