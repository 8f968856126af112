"""A pytest plugin that points the OpenAI Agents SDK's own session tests at praisondb.

Loaded with ``-p praisondb_sdk_kit`` in a pytest run of the SDK's test files (from its
source distribution; see test_sdk_kit.py). It replaces ``SQLiteSession`` in every test
module with :class:`KitSession`, a ``PraisonDBSession`` taking SQLiteSession's
constructor arguments, on the backend named by ``PRAISONDB_KIT_BACKEND`` /
``PRAISONDB_KIT_URL``; runs ``async def`` tests (the SDK uses pytest-asyncio); and
deselects, with the reason, the tests that inspect SQLite itself (its connections,
tables, locks and rows written around the session).

Not a test module of praisondb's own suite: its directory has no ``__init__``.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import os
from pathlib import Path
from typing import Any

import pytest

from praisondb import PraisonDB
from praisondb.integrations.openai_agents import PraisonDBSession, storage_id

BACKEND = os.environ.get("PRAISONDB_KIT_BACKEND", "sqlite")
URL = os.environ.get("PRAISONDB_KIT_URL", "")
_DATABASES: dict[str, PraisonDB] = {}

SQLITE_INTERNALS = "inspects SQLiteSession's sqlite3 connections, tables, locks or rollbacks"
CORRUPT_ROWS = "writes undecodable rows into SQLite's table; praisondb stores only checked JSON"
CLOSED = "a closed SQLiteSession refuses writes; PraisonDBSession.close() closes only a database it opened"
DESELECTED = {
    "test_sqlite_session_close_closes_worker_thread_connections": SQLITE_INTERNALS,
    "test_sqlite_session_reaps_connections_from_exited_worker_threads": SQLITE_INTERNALS,
    "test_sqlite_session_closes_retired_connections_before_the_next_allocation": SQLITE_INTERNALS,
    "test_sqlite_session_keeps_connections_of_live_worker_threads": SQLITE_INTERNALS,
    "test_sqlite_session_file_lock_is_shared_across_instances": SQLITE_INTERNALS,
    "test_sqlite_session_failed_add_items_releases_write_lock": SQLITE_INTERNALS,
    "test_sqlite_session_failed_clear_session_rolls_back": SQLITE_INTERNALS,
    "test_sqlite_session_failed_pop_item_releases_write_lock": SQLITE_INTERNALS,
    "test_sqlite_session_rollback_failure_evicts_connection": SQLITE_INTERNALS,
    "test_sqlite_session_close_retries_quarantined_connection": SQLITE_INTERNALS,
    "test_sqlite_session_post_commit_cancellation_propagates_after_known_outcome": SQLITE_INTERNALS,
    "test_sqlite_session_pop_item_skips_corrupt_most_recent": CORRUPT_ROWS,
    "test_sqlite_session_pop_item_returns_none_after_dropping_only_corrupt_rows": CORRUPT_ROWS,
    "test_sqlite_session_get_items_limit_skips_corrupt_newest_rows": CORRUPT_ROWS,
    "test_sqlite_session_get_items_session_settings_limit_skips_corrupt_rows": CORRUPT_ROWS,
    "test_sqlite_session_closed_rejects_empty_add_items": CLOSED,
}


def _database(db_path: str | Path) -> tuple[PraisonDB, str]:
    """The database SQLiteSession(db_path) would use, and a namespace for session ids.

    SQLite: the same file (":memory:": a private in-memory store). A server is shared by
    every test, so each db_path gets its own namespace of session ids instead."""
    path = str(db_path)
    if path == ":memory:":
        return PraisonDB("memory://"), ""
    if BACKEND == "sqlite":
        key, url, namespace = path, f"sqlite:///{path}", ""
    elif BACKEND == "memory":
        key, url, namespace = path, "memory://", ""
    else:
        key, url = URL, URL
        namespace = hashlib.sha256(str(Path(path).resolve()).encode()).hexdigest()[:16]
    if key not in _DATABASES:
        _DATABASES[key] = PraisonDB(url, auto_migrate=True)
    return _DATABASES[key], namespace


class KitSession(PraisonDBSession):
    """``SQLiteSession(session_id, db_path, sessions_table, messages_table,
    session_settings)`` stored by praisondb."""

    def __init__(
        self,
        session_id: str,
        db_path: str | Path = ":memory:",
        sessions_table: str = "agent_sessions",
        messages_table: str = "agent_messages",
        session_settings: Any = None,
    ) -> None:
        db, namespace = _database(db_path)
        super().__init__(session_id, db, session_settings)
        if namespace:
            self.praisondb_session_id = storage_id(f"{namespace}/{session_id}")

    def close(self) -> None:  # type: ignore[override]
        """SQLiteSession.close() is synchronous; the databases close when pytest ends."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "asyncio: an async test (run by praisondb_sdk_kit)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kept, dropped = [], []
    for item in items:
        name = getattr(item, "originalname", item.name)
        audit = os.environ.get("PRAISONDB_KIT_ALL")  # run them all, to see what fails
        (dropped if name in DESELECTED and not audit else kept).append(item)
        module = getattr(item, "module", None)
        if module is not None and hasattr(module, "SQLiteSession"):
            module.SQLiteSession = KitSession
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
    terminalreporter.section("praisondb: SDK tests left out, and why")
    for name, reason in sorted(DESELECTED.items()):
        terminalreporter.write_line(f"{name}: {reason}")


def pytest_unconfigure(config: pytest.Config) -> None:
    for db in _DATABASES.values():
        db.close()
    _DATABASES.clear()
