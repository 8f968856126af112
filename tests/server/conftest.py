"""Fixtures of the server tests: the app in-process, and real ``praisondb serve`` processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_module

require_module("starlette")
require_module("httpx")

from praisondb import PraisonDB  # noqa: E402
from tests.server.serving import Server, serve  # noqa: E402


@pytest.fixture
def server_db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'served.db'}"


@pytest.fixture
def server(server_db_url: str, tmp_path: Path) -> Iterator[Server]:
    """A real server that binds its own port: while it is down, connections are refused."""
    with serve(server_db_url, tmp_path, inherit=False) as running:
        yield running


@pytest.fixture
def app_db(tmp_path: Path) -> Iterator[PraisonDB]:
    with PraisonDB(f"sqlite:///{tmp_path / 'app.db'}", auto_migrate=True) as db:
        yield db
