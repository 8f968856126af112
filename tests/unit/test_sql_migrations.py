"""The SQL schema lifecycle: auto-upgrade of fresh SQLite, SchemaOutOfDate for databases
that are behind, concurrent migration, and models == migrations (Alembic "check")."""

from __future__ import annotations

import io
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from praisondb import ConfigError, PraisonDB, SchemaOutOfDate
from praisondb.model import utcnow
from praisondb.stores import open_conversation_store
from praisondb.stores.sql import engine as sql_engine
from praisondb.stores.sql import migrate
from praisondb.stores.sql.schema import sessions, state
from praisondb.stores.sql.store import SQLStore
from praisondb.urls import parse_url
from tests.unit.sql_fixtures import any_sql_url, postgres_url, server_url  # noqa: F401
from tests.waiting import eventually

REPO = Path(__file__).resolve().parents[2]
EXTRA_REVISION = '''"""Test-only revision on top of HEAD.

Revision ID: 0002_test
Revises: HEAD
"""

from alembic import op

revision = "0002_test"
down_revision = "HEAD"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_praisondb_state_test_extra", "praisondb_state", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_praisondb_state_test_extra", table_name="praisondb_state")
'''


@pytest.fixture
def newer_praisondb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Pretend this praisondb ships one more revision than the database has."""
    scripts = tmp_path / "migrations"
    shutil.copytree(migrate.script_location(), scripts)
    (scripts / "versions" / "0002_test.py").write_text(
        EXTRA_REVISION.replace("HEAD", migrate.head())
    )
    monkeypatch.setattr(migrate, "script_location", lambda: scripts)
    migrate._scripts.cache_clear()
    yield "0002_test"
    migrate._scripts.cache_clear()


def test_a_fresh_sqlite_file_is_upgraded_on_open(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    store = open_conversation_store(f"sqlite:///{path}")
    try:
        assert store.schema_version() == migrate.head()
    finally:
        store.close()
    with sqlite3.connect(path) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert {"praisondb_sessions", "praisondb_messages", "praisondb_state"} <= tables
    assert migrate.check(f"sqlite:///{path}") == []


def test_in_memory_sqlite_is_migrated_and_not_persistent() -> None:
    store = open_conversation_store("sqlite://")
    try:
        assert isinstance(store, SQLStore)
        assert store.schema_version() == migrate.head()
        assert store.capabilities == frozenset()
    finally:
        store.close()


def test_an_empty_server_database_needs_an_explicit_upgrade(server_url: str) -> None:  # noqa: F811
    with pytest.raises(SchemaOutOfDate) as caught:
        open_conversation_store(server_url)
    assert caught.value.current is None and caught.value.expected == migrate.head()
    assert "praisondb db upgrade" in str(caught.value)
    store = open_conversation_store(server_url, auto_migrate=True)
    try:
        assert store.schema_version() == migrate.head()
    finally:
        store.close()
    open_conversation_store(server_url).close()  # at head now: opens without auto_migrate


def test_a_sqlite_file_behind_head_is_refused_until_migrated(
    tmp_path: Path, newer_praisondb: str
) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    migrate.upgrade(url, "0001")
    with pytest.raises(SchemaOutOfDate) as caught:
        open_conversation_store(url)
    assert (caught.value.current, caught.value.expected) == ("0001", newer_praisondb)
    with PraisonDB(url, auto_migrate=True) as db:
        assert db.conversations.schema_version() == newer_praisondb


def test_a_server_database_behind_head_names_the_url_without_password(
    postgres_url: str,  # noqa: F811
    newer_praisondb: str,
) -> None:
    with_password = postgres_url.replace("postgres@", "postgres:Hunter2Pw@", 1)
    assert migrate.upgrade(with_password, "0001") == "0001"
    with pytest.raises(SchemaOutOfDate) as caught:
        open_conversation_store(with_password)
    message = str(caught.value)
    assert "0001" in message and newer_praisondb in message
    assert "Hunter2Pw" not in message and "***" in message
    assert migrate.upgrade(with_password) == newer_praisondb
    open_conversation_store(with_password).close()


def test_a_revision_from_a_newer_praisondb_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    open_conversation_store(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE praisondb_alembic_version SET version_num = '9999_future'")
    with pytest.raises(ConfigError, match="9999_future"):
        open_conversation_store(f"sqlite:///{path}")


OPENER = """
import sys
from praisondb.stores import open_conversation_store
store = open_conversation_store(sys.argv[1])
print(store.schema_version())
store.close()
"""


def _open_concurrently(url: str, processes: int) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPENER, url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(processes)
    ]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outputs.append(out.strip())
    return outputs


def test_concurrent_auto_migration_of_one_sqlite_file_is_safe(tmp_path: Path) -> None:
    path = tmp_path / "raced.db"
    assert _open_concurrently(f"sqlite:///{path}", 6) == [migrate.head()] * 6
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version_num FROM praisondb_alembic_version").fetchall() == [
            (migrate.head(),)
        ]
    assert migrate.check(f"sqlite:///{path}") == []


def test_concurrent_auto_migration_of_a_server_database_is_safe(server_url: str) -> None:  # noqa: F811
    sep = "&" if "?" in server_url else "?"
    outputs = _open_concurrently(f"{server_url}{sep}auto_migrate=true", 4)
    assert outputs == [migrate.head()] * 4
    assert migrate.check(server_url) == []


def test_models_match_migrations(any_sql_url: str) -> None:  # noqa: F811
    """Alembic autogenerate finds nothing to change between sql_schema and the migrated DB."""
    assert migrate.upgrade(any_sql_url) == migrate.head()
    assert migrate.check(any_sql_url) == []


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///unused.db", ["BIGINT", "praisondb_alembic_version"]),
        ("postgresql://u:pw@nohost/db", ["JSONB", 'COLLATE "C"', "TIMESTAMP WITH TIME ZONE"]),
        ("mysql://u:pw@nohost/db", ["utf8mb4_nopad_bin", "LONGTEXT", "DATETIME(6)", "JSON"]),
    ],
)
def test_offline_mode_writes_the_sql(url: str, expected: list[str]) -> None:
    out = io.StringIO()
    migrate.upgrade(url, sql=True, output=out)
    sql = out.getvalue()
    assert "CREATE TABLE praisondb_messages" in sql
    for fragment in expected:
        assert fragment in sql


def test_scripts_are_found_in_the_repository_or_the_wheel() -> None:
    location = migrate.script_location()
    assert (location / "env.py").is_file()
    assert location.name in {"migrations", "_migrations"}
    assert migrate.history()[0].revision == "0001"


def test_the_write_token_revision_keeps_state_both_ways(any_sql_url: str) -> None:  # noqa: F811
    """0002 adds ``praisondb_state.write_token`` to a database holding state written at
    0001; the entries survive the upgrade and a downgrade back, and CAS works after it."""
    assert migrate.upgrade(any_sql_url, "0001") == "0001"
    engine = sa.create_engine(sql_engine.driver_url(parse_url(any_sql_url)))
    try:
        with engine.begin() as conn:  # the columns 0001 has; the types bind as the store does
            conn.execute(
                state.insert().values(
                    scope="app", key="old", value={"kept": 1}, version=3, updated_at=utcnow()
                )
            )
        assert migrate.upgrade(any_sql_url) == migrate.head()
        assert "write_token" in _state_columns(engine)
        with PraisonDB(any_sql_url) as db:
            entry = db.state.get_entry("old")
            assert entry is not None and (entry.value, entry.version) == ({"kept": 1}, 3)
            assert db.state.set("old", {"kept": 2}, expected_version=3).version == 4
        assert migrate.downgrade(any_sql_url, "0001") == "0001"
        assert "write_token" not in _state_columns(engine)
        with engine.connect() as conn:
            version = conn.execute(
                sa.text("SELECT version FROM praisondb_state WHERE scope = 'app'")
            ).scalar()
        assert version == 4
    finally:
        engine.dispose()


def test_the_updated_floor_revision_keeps_sessions_findable_both_ways(
    any_sql_url: str,  # noqa: F811
) -> None:
    """0003 moves the sessions index from updated_at to updated_floor: sessions written
    at 0002 come through with the floor equal to updated_at, the updated_at filters find
    them, appends move updated_at; a downgrade puts the old index back."""
    assert migrate.upgrade(any_sql_url, "0002") == "0002"
    engine = sa.create_engine(sql_engine.driver_url(parse_url(any_sql_url)))
    old = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)
    try:
        with engine.begin() as conn:  # the columns 0002 has; the types bind as the store does
            for sid in ("s-old", "s-active"):
                conn.execute(
                    sessions.insert().values(
                        id=sid,
                        metadata={},
                        created_at=old,
                        updated_at=old,
                        message_count=0,
                        last_seq=0,
                    )
                )
        assert migrate.upgrade(any_sql_url) == migrate.head()
        assert _session_indexes(engine) >= {"ix_praisondb_sessions_updated_floor"}
        assert "ix_praisondb_sessions_updated_at" not in _session_indexes(engine)
        with engine.connect() as conn:
            floors = dict(conn.execute(sa.select(sessions.c.id, sessions.c.updated_floor)).all())
        assert floors == {"s-old": old, "s-active": old}
        with PraisonDB(any_sql_url) as db:
            db.messages.append("s-active", "user", "hi")
            active = db.sessions.get("s-active")
            assert active.updated_at > old and active.message_count == 1
            recent = [
                s.id for s in db.sessions.list(updated_after=old + timedelta(seconds=1)).items
            ]
            assert recent == ["s-active"]
            stale = [
                s.id for s in db.sessions.list(updated_before=old + timedelta(seconds=1)).items
            ]
            assert stale == ["s-old"]
            assert db.sessions.get("s-old").updated_at == old
        assert migrate.downgrade(any_sql_url, "0002") == "0002"
        assert "ix_praisondb_sessions_updated_at" in _session_indexes(engine)
        with engine.connect() as conn:
            count = conn.execute(sa.text("SELECT count(*) FROM praisondb_sessions")).scalar()
        assert count == 2
    finally:
        engine.dispose()


def _session_indexes(engine: sa.Engine) -> set[str]:
    return {str(ix["name"]) for ix in sa.inspect(engine).get_indexes("praisondb_sessions")}


def _state_columns(engine: sa.Engine) -> set[str]:
    return {column["name"] for column in sa.inspect(engine).get_columns("praisondb_state")}


def _open_without_migrating(url: str) -> str:
    try:
        open_conversation_store(url).close()
    except Exception as exc:  # reported to the test, which names it
        return f"{type(exc).__name__}: {exc}"
    return "opened"


def _waiting_for_the_lock(conn: sa.Connection) -> bool:
    if conn.dialect.name == "postgresql":
        query = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
    else:
        query = (
            "SELECT count(*) FROM information_schema.PROCESSLIST "
            "WHERE INFO LIKE 'SELECT GET_LOCK%%' AND ID <> CONNECTION_ID()"
        )
    return bool(conn.execute(sa.text(query)).scalar())


def test_an_open_during_another_process_s_migration_waits_for_it(server_url: str) -> None:  # noqa: F811
    """While another process migrates (holding the migration lock, its DDL half done on
    MySQL, invisible until commit on PostgreSQL), a store opened without auto_migrate
    waits for it and opens, instead of reporting the database at revision none."""
    parsed = parse_url(server_url)
    engine = sql_engine.create_engine(parsed, sql_engine.parse_options(parsed, {}))
    outcome: list[str] = []
    opener = threading.Thread(target=lambda: outcome.append(_open_without_migrating(server_url)))
    try:
        with engine.connect() as migrating, engine.connect() as watcher:
            with migrate._mysql_lock(migrating), migrating.begin():
                if engine.dialect.name == "postgresql":
                    migrating.execute(
                        sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": migrate._PG_LOCK_KEY}
                    )
                opener.start()
                eventually(lambda: _waiting_for_the_lock(watcher), 30, "the opener to wait")
                command.upgrade(migrate.alembic_config(connection=migrating), "head")
            opener.join(timeout=60)
    finally:
        engine.dispose()
    assert outcome == ["opened"]
