"""Fixtures of the conformance suite: processes, stoppable servers."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from praisondb import PraisonDB
from tests.backends import TestBackend
from tests.faces import FACE_ENV
from tests.faults.proxy import FaultProxy
from tests.faults.targets import STOPPABLE, proxied, target

WORKER = Path(__file__).with_name("_worker.py")
SESSION_WORKER = Path(__file__).with_name("_session_worker.py")
ROOT = Path(__file__).resolve().parents[2]


def worker_env(face: str = "sync") -> dict[str, str]:
    """Child processes import praisondb (and tests.faces) from this checkout even when it
    is not installed, and run on ``face``."""
    path = os.environ.get("PYTHONPATH")
    root = f"{ROOT}{os.pathsep}{path}" if path else str(ROOT)
    return {**os.environ, "PYTHONPATH": root, FACE_ENV: face}


def spawn_worker(*args: str, face: str, script: Path = WORKER) -> subprocess.Popen[str]:
    """``script`` (_worker.py or _session_worker.py) with ``args``, on the test's ``face``."""
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=worker_env(face),
    )


@pytest.fixture
def multi_process(backend: TestBackend) -> TestBackend:
    """Marks a test that opens the store from several processes.

    tests/conftest.py generates such tests only for backends whose store declares
    ``Capability.MULTI_PROCESS``.
    """
    assert backend.multi_process
    return backend


@dataclass(frozen=True)
class StoppableServer:
    """The backend's server as a store sees it: through a fault proxy that can stop it
    (open connections reset, new ones refused) and bring it back, the data intact."""

    url: str
    """``backend_url`` routed through the proxy, with short timeouts (faults/targets.py)."""
    proxy: FaultProxy

    def stop(self) -> None:
        self.proxy.stop()

    def heal(self) -> None:
        self.proxy.heal()


@pytest.fixture
def stop_server(db: PraisonDB, backend: TestBackend, backend_url: str) -> Iterator[StoppableServer]:
    """A server the test can stop; only for backends marked ``backends(*STOPPABLE)``.

    ``db`` has migrated the store already. File and memory stores have no server to
    lose: their unusable-path cases are ConfigErrors (tests/unit/test_jsonfiles.py,
    test_errors_sqlite_path.py), not outages."""
    assert backend.name in STOPPABLE, f"{backend.name} has no server to stop"
    with FaultProxy(*target(backend_url)) as proxy:
        yield StoppableServer(proxied(backend.name, backend_url, proxy), proxy)
