"""Fixtures for the LangGraph checkpointer tests: a saver per face on the backend's store."""

from __future__ import annotations

import pytest

from tests.backends import TestBackend
from tests.conftest import require_module

require_module("langgraph.checkpoint.base")


@pytest.fixture
def multi_process(backend: TestBackend) -> TestBackend:
    """Marks a test that opens the store from several processes (generated only for
    backends whose store declares ``Capability.MULTI_PROCESS``, see tests/conftest.py)."""
    assert backend.multi_process
    return backend


@pytest.fixture
def thread_id(uid: str) -> str:
    return f"lg-{uid}"
