"""PraisonAI's real ``Agent`` against a local fake OpenAI-compatible server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import require_module
from tests.fakes.openai_server import FakeOpenAIServer

require_module("praisonaiagents")  # CI fails without it; elsewhere these tests skip

from tests.integrations.praisonai.agent_kit import process_pool  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
QUIET = {"PRAISONAI_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}


@pytest.fixture(scope="session")
def openai_server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture(scope="session")
def agent_processes() -> Iterator[ProcessPoolExecutor]:
    """Runs each agent turn in a new process (see agent_kit.process_pool)."""
    with process_pool() as pool:
        yield pool


@pytest.fixture
def agent_env(
    openai_server: FakeOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """The environment of an agent process: the fake model, no telemetry, this checkout
    importable. This process gets it too, and runs in ``tmp_path`` (PraisonAI writes its
    file memory under the working directory)."""
    env = {**openai_server.env(), **QUIET}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    path = os.environ.get("PYTHONPATH")
    root = f"{ROOT}{os.pathsep}{path}" if path else str(ROOT)
    return {**os.environ, "PYTHONPATH": root, "PRAISONDB_TEST_CWD": str(tmp_path)}
