"""A pytest plugin that points Google ADK's own session-service contract tests at
praisondb.

ADK's tests/unittests/sessions/test_session_service.py holds every test that takes the
``session_service`` fixture to a behavior all ``BaseSessionService`` implementations owe
their callers; the backends it runs them on are listed in the sibling ``_conformance``
module. Loaded with ``-p praisondb_adk_kit`` in a pytest run of that file (from a checkout
of google/adk-python; see test_adk_kit.py), this plugin serves its own ``_conformance``
instead: one backend, ``PraisonDBSessionService`` on the praisondb URL in
``PRAISONDB_KIT_URL``. It runs ``async def`` tests itself (ADK uses pytest-asyncio) and
deselects, saying why, the tests that do not take the contract fixture (they test ADK's
own database services: their engines, tables and mocks) or that pass their own service.

Each test gets its own namespace of app names on the shared database (``KitService``
adds it and takes it off again), so tests that reuse ``my_app``/``s1`` never meet.
Not a test module of praisondb's own suite: its directory has no ``__init__``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib.abc
import importlib.machinery
import inspect
import os
import sys
import types
import uuid
from collections.abc import Mapping
from typing import Any

import pytest

from praisondb import PraisonDB
from praisondb.integrations.adk import PraisonDBSessionService

URL = os.environ.get("PRAISONDB_KIT_URL", "memory://")
BACKEND = os.environ.get("PRAISONDB_KIT_BACKEND", "memory")
NOT_CONTRACT = "not a contract test: it exercises ADK's own services (engines, tables, mocks)"
OWN_SERVICE = "passes its own InMemorySessionService instead of the contract fixture"
DIVERGENCES: dict[str, str] = {}
"""Contract test name -> why praisondb fails it (the test is then xfail(strict=True))."""
_DB: list[PraisonDB] = []


class KitService(PraisonDBSessionService):
    """PraisonDBSessionService with every app name put in a namespace of its own."""

    def __init__(self, db: PraisonDB) -> None:
        super().__init__(db)
        self.ns = f"kit{uuid.uuid4().hex[:12]}."

    def _out(self, session: Any) -> Any:
        if session is not None and session.app_name.startswith(self.ns):
            session.app_name = session.app_name[len(self.ns) :]
        return session

    async def create_session(self, *, app_name: str, **kw: Any) -> Any:  # type: ignore[override]
        return self._out(await super().create_session(app_name=self.ns + app_name, **kw))

    async def get_session(self, *, app_name: str, **kw: Any) -> Any:  # type: ignore[override]
        return self._out(await super().get_session(app_name=self.ns + app_name, **kw))

    async def list_sessions(self, *, app_name: str, **kw: Any) -> Any:  # type: ignore[override]
        response = await super().list_sessions(app_name=self.ns + app_name, **kw)
        for session in response.sessions:
            self._out(session)
        return response

    async def delete_session(self, *, app_name: str, **kw: Any) -> None:  # type: ignore[override]
        await super().delete_session(app_name=self.ns + app_name, **kw)

    async def get_user_state(self, *, app_name: str, **kw: Any) -> Any:  # type: ignore[override]
        return await super().get_user_state(app_name=self.ns + app_name, **kw)

    async def append_event(self, session: Any, event: Any) -> Any:
        session.app_name = self.ns + session.app_name
        try:
            return await super().append_event(session, event)
        finally:
            self._out(session)


@dataclasses.dataclass(frozen=True)
class _Backend:
    """The shape of ADK's ``_conformance._Backend``."""

    name: str
    divergences: Mapping[str, str] = dataclasses.field(default_factory=dict)


BACKENDS = [_Backend(f"praisondb-{BACKEND}", DIVERGENCES)]


def _database() -> PraisonDB:
    if not _DB:
        _DB.append(PraisonDB(URL, auto_migrate=True))
    return _DB[0]


@pytest.fixture(params=BACKENDS, ids=lambda backend: backend.name)
def session_service(request: pytest.FixtureRequest) -> PraisonDBSessionService:
    """ADK's contract fixture, served by praisondb."""
    backend: _Backend = request.param
    divergence = backend.divergences.get(request.node.originalname)
    if divergence is not None:
        request.node.add_marker(pytest.mark.xfail(strict=True, reason=divergence))
    return KitService(_database())


class _Conformance(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves this module's BACKENDS and fixture as ADK's ``..sessions._conformance``."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name.endswith("sessions._conformance"):
            return importlib.machinery.ModuleSpec(name, self)
        return None

    def create_module(self, spec: Any) -> types.ModuleType:
        module = types.ModuleType(spec.name)
        module.BACKENDS = BACKENDS  # type: ignore[attr-defined]
        module.session_service = session_service  # type: ignore[attr-defined]
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        """Everything is in place already."""


sys.meta_path.insert(0, _Conformance())


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "asyncio: an async test (run by praisondb_adk_kit)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        param = callspec.params.get("session_service") if callspec else None
        ours = isinstance(param, _Backend)  # not a test's own service, nor no fixture
        (kept if ours else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    arguments = {name: pyfuncitem.funcargs[name] for name in names}
    asyncio.run(pyfuncitem.obj(**arguments))
    return True


def pytest_terminal_summary(terminalreporter: Any) -> None:
    terminalreporter.section("praisondb: ADK session tests left out, and why")
    terminalreporter.write_line(f"tests without the session_service fixture: {NOT_CONTRACT}")
    terminalreporter.write_line(f"tests parametrizing session_service themselves: {OWN_SERVICE}")
    for name, reason in sorted(DIVERGENCES.items()):
        terminalreporter.write_line(f"xfail {name}: {reason}")


def pytest_unconfigure(config: pytest.Config) -> None:
    with contextlib.suppress(Exception):
        for db in _DB:
            db.close()
    _DB.clear()
