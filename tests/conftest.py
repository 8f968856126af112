"""Shared fixtures: backend selection, strictness in CI, unique ids."""

from __future__ import annotations

import contextlib
import importlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import praisondb.clock
from praisondb import BackendUnavailable, PraisonDB
from praisondb.aio import AsyncPraisonDB
from tests.backends import BACKENDS, TestBackend
from tests.faces import FACES, LoopThread, lens


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backends",
        default=os.environ.get("PRAISONDB_TEST_BACKENDS", ",".join(BACKENDS)),
        help="comma-separated backends to run the conformance suite against",
    )


def require_all_backends() -> bool:
    """In CI an unreachable backend is a failure, never a skip."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"} or bool(
        os.environ.get("PRAISONDB_REQUIRE_ALL_BACKENDS")
    )


def require_module(name: str) -> ModuleType:
    """Import a driver a test module needs. Missing, it fails the run in CI (a skipped
    backend there is a failure) and skips the module elsewhere (a partial install)."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        message = f"{name} is not installed ({exc})"
        if require_all_backends():
            pytest.fail(message + "; CI runs every backend: pip install -e '.[dev]'")
        pytest.skip(message, allow_module_level=True)


def pytest_configure(config: pytest.Config) -> None:
    """PRAISONDB_TEST_SERVERS=containers|auto: the controller starts the missing servers in
    Docker and sets their URLs before xdist workers spawn (tests/containers.py)."""
    if hasattr(config, "workerinput"):
        return  # an xdist worker: it inherited the controller's environment
    _start_fault_log(config)
    from tests.containers import ContainersUnavailable, configure_servers

    try:
        configure_servers(os.environ, strict=require_all_backends())
    except (ContainersUnavailable, ValueError) as exc:
        raise pytest.UsageError(str(exc)) from None


CONFORMANCE = Path(__file__).parent / "conformance"


def selected_backends(config: pytest.Config) -> list[str]:
    names = [n.strip() for n in str(config.getoption("--backends")).split(",") if n.strip()]
    unknown = sorted(set(names) - set(BACKENDS))
    if unknown:
        raise pytest.UsageError(f"unknown backends {unknown}; known: {sorted(BACKENDS)}")
    return names


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise over the selected backends that can run the test.

    A test that needs several processes on one store (the ``multi_process`` fixture),
    names its backends (``@pytest.mark.backends(...)``) or needs an optional protocol
    (``@pytest.mark.requires.with_args(Protocol)``) is generated only for those, so nothing is
    skipped at run time.
    """
    if "backend" not in metafunc.fixturenames:
        return
    names = selected_backends(metafunc.config)
    only = metafunc.definition.get_closest_marker("backends")
    if only is not None:
        names = [n for n in names if n in only.args]
    if "multi_process" in metafunc.fixturenames:
        names = [n for n in names if BACKENDS[n].multi_process]
    for marker in metafunc.definition.iter_markers("requires"):
        names = [n for n in names if all(BACKENDS[n].has(p) for p in marker.args)]
    metafunc.parametrize("backend", names, indirect=True, scope="session")
    if "face" in metafunc.fixturenames and CONFORMANCE in Path(metafunc.definition.path).parents:
        metafunc.parametrize("face", FACES, indirect=True, scope="session")


@pytest.fixture(scope="session")
def face(request: pytest.FixtureRequest) -> str:
    """``sync`` or ``async``: which face of praisondb the test's ``db`` is (tests/faces.py).

    The conformance suite runs on both; other tests (CLI, integrations, which take a sync
    ``PraisonDB``) on the sync face."""
    name: str = getattr(request, "param", "sync")
    return name


@pytest.fixture(scope="session")
def face_loop() -> Iterator[LoopThread]:
    """The event loop the async face runs on, in a thread of its own."""
    loop = LoopThread()
    yield loop
    loop.close()


@pytest.fixture(scope="session")
def open_db(face: str, face_loop: LoopThread) -> Iterator[Callable[..., Any]]:
    """``open_db(url, **options)``: a database of this test's face, closed at the end."""
    opened: list[Any] = []

    def open_(url: str | None = None, *args: Any, **options: Any) -> Any:
        if face == "sync":
            database: Any = PraisonDB(url, *args, **options)
        else:
            database = lens(AsyncPraisonDB(url, *args, **options), face_loop)
        opened.append(database)
        return database

    yield open_
    for database in reversed(opened):
        with contextlib.suppress(Exception):
            database.close()


@pytest.fixture(scope="session")
def backend(request: pytest.FixtureRequest) -> TestBackend:
    return BACKENDS[request.param]


@pytest.fixture(scope="session")
def backend_url(backend: TestBackend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private store for this backend, shared by every test of the run (tests use unique ids)."""
    yield from private_url(backend.name, tmp_path_factory)


def private_url(name: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private store of backend ``name`` for a fixture to yield from; an unreachable
    server fails the run in CI and skips elsewhere."""
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(BACKENDS[name].factory(tmp_path_factory.mktemp(name)))
        except Exception as exc:
            message = f"backend {name} is unreachable: {type(exc).__name__}: {exc}"
            if require_all_backends():
                pytest.fail(
                    message + " (CI runs every backend; start it with tools/services.sh up)"
                )
            pytest.skip(message)
        yield url


@pytest.fixture(scope="session")
def db(backend: TestBackend, backend_url: str, open_db: Callable[..., Any]) -> Iterator[PraisonDB]:
    """The backend's store through this test's face (``face``): sync, or the async face
    seen through tests/faces.py's sync lens."""
    with open_db(backend_url, auto_migrate=True) as database:
        try:
            database.ping()
        except BackendUnavailable as exc:
            if require_all_backends():
                pytest.fail(str(exc))
            pytest.skip(str(exc))
        opened = database.conversations.capabilities
        assert opened == backend.capabilities(), (
            f"{backend_url} promises {sorted(c.value for c in opened)}, its store class "
            f"{sorted(c.value for c in backend.capabilities())}: tests would pick the wrong cases"
        )
        yield database


@pytest.fixture
def uid() -> str:
    """A unique id, so tests sharing a store never see each other's data."""
    return uuid.uuid4().hex


class FakeClock:
    """praisondb's wall clock, moved forward by a test instead of waited for.

    It keeps running with the real clock and only ever jumps forward, so what a server
    derives from it (Redis PEXPIREAT, a MongoDB TTL index) is never in the past."""

    def __init__(self) -> None:
        self.offset_ns = 0

    def time_ns(self) -> int:
        return time.time_ns() + self.offset_ns

    def advance(self, seconds: float) -> None:
        """Move praisondb's clock ``seconds`` forward: TTLs and leases that short lapse."""
        assert seconds >= 0, "the clock only moves forward"
        self.offset_ns += int(seconds * 1_000_000_000)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """A controllable ``praisondb.clock`` for client-side expiry (state TTLs, leases,
    tokens) in this process; subprocesses keep the real clock."""
    fake = FakeClock()
    monkeypatch.setattr(praisondb.clock, "time_ns", fake.time_ns)
    return fake


@pytest.fixture
def work_dir(tmp_path: Path) -> Path:
    return tmp_path


def _start_fault_log(config: pytest.Config) -> None:
    """A fresh tally file for tests/faults/record.py, inherited by the xdist workers."""
    import tempfile

    from tests.faults.record import ENV

    handle, path = tempfile.mkstemp(prefix="praisondb-faults-", suffix=".jsonl")
    os.close(handle)
    os.environ[ENV] = path
    config.stash[_FAULT_LOG] = Path(path)


_FAULT_LOG = pytest.StashKey[Path]()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Print how many faults were injected per backend, and with what result."""
    from tests.faults.record import summary

    path = config.stash.get(_FAULT_LOG, None)
    if path is None:
        return
    lines = summary(path)
    path.unlink(missing_ok=True)
    if lines:
        terminalreporter.section("faults injected")
        for line in lines:
            terminalreporter.write_line(line)
