from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.backends import TestBackend

WORKER = Path(__file__).with_name("_worker.py")


def spawn_worker(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def multi_process(backend: TestBackend) -> TestBackend:
    """Marks a test that opens the store from several processes.

    tests/conftest.py generates such tests only for backends with ``multi_process=True``.
    """
    assert backend.multi_process
    return backend
