"""What is specific to the SQL backend: NUL on PostgreSQL, 4-byte characters and exact ids
on MySQL/MariaDB, SQLite pragmas, options, redacted connection errors, cascades, purge."""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from praisondb import ConfigError, Message, PraisonDB, Run
from praisondb.stores import open_conversation_store
from praisondb.stores.sql import engine as sql_engine
from praisondb.stores.sql import types as sql_types
from praisondb.stores.sql.schema import FLOOR_LAG, TABLES, sessions
from praisondb.stores.sql.store import SQLStore
from praisondb.urls import parse_url
from tests.conftest import FakeClock
from tests.unit.sql_fixtures import any_sql_url, mysql_url, postgres_url  # noqa: F401

TRICKY = [
    "",
    "plain",
    "\x00",
    "a\x00b\x00",
    "\ue000",
    "\ue0000",
    "\ue0001\x00\ue000",
    "\\u0000",
    "\\\\u0000",
    '"\\"\x00',
    "🚀\x00中文",
]


@pytest.mark.parametrize("text", TRICKY)
def test_text_escaping_is_reversible(text: str) -> None:
    escaped = sql_types.escape_text(text)
    assert "\x00" not in escaped
    assert sql_types.unescape_text(escaped) == text


@pytest.mark.parametrize("text", TRICKY)
def test_json_escaping_is_reversible(text: str) -> None:
    value = {text: [text, {"k": text}], "n": 1}
    dumped = sql_types.pg_json_dumps(value)
    assert "\\u0000" not in dumped.replace("\\\\", "")
    assert sql_types.pg_json_loads(dumped) == value
    assert sql_types.pg_json_loads(dumped.encode()) == value


def _raw_rows(url: str, sql: str) -> list[tuple[object, ...]]:
    parsed = parse_url(url)
    engine = sql_engine.create_engine(parsed, sql_engine.parse_options(parsed, {}))
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


def test_nul_round_trips_on_postgres(postgres_url: str) -> None:  # noqa: F811
    with PraisonDB(postgres_url, auto_migrate=True) as db:
        db.sessions.create("s", title="t\x00itle", metadata={"k\x00ey": "v\x00al", "\ue000": 1})
        blocks = [{"type": "text", "text": "x\x00y", "\x00": "\ue0000"}]
        db.messages.append("s", "user", "a\x00b\ue000c\\u0000", {"m\x00": ["\x00"]})
        db.messages.append("s", "assistant", blocks)
        db.conversations.put_messages("s", [Message("s", "tool", "\x00put", seq=10, id="p")])
        db.state.set("k\ue000", {"v": "\x00"}, scope="user:u")
        db.runs.save(Run("s", id="r", error="boom\x00", model="m\x00"))
        got = db.messages.list("s")
        assert [m.content for m in got] == ["a\x00b\ue000c\\u0000", blocks, "\x00put"]
        assert got[0].metadata == {"m\x00": ["\x00"]}
        info = db.sessions.get("s")
        assert info.title == "t\x00itle" and info.metadata == {"k\x00ey": "v\x00al", "\ue000": 1}
        assert db.state.get("k\ue000", scope="user:u") == {"v": "\x00"}
        run = db.runs.get("r")
        assert (run.error, run.model) == ("boom\x00", "m\x00")
    stored = _raw_rows(postgres_url, "SELECT content FROM praisondb_messages ORDER BY seq")
    assert all("\x00" not in str(row[0]) for row in stored)
    assert stored[0][0] == "a\ue0000b\ue0001c\\u0000"


def test_four_byte_characters_and_exact_ids_on_mysql(mysql_url: str) -> None:  # noqa: F811
    with PraisonDB(mysql_url, auto_migrate=True) as db:
        sid = "🚀 session 👩‍👩‍👧‍👦"
        db.sessions.create(sid, user_id="𝔘ser", metadata={"🔑": "🎉", "𝔘": ["💯"]})
        db.messages.append(sid, "user", "emoji 🏳️‍🌈 𝔘𝔫𝔦𝔠𝔬𝔡𝔢", {"😀": "😀"})
        db.state.set("🔑", "🗝️", scope=f"session:{sid}")
        assert db.sessions.get(sid).metadata == {"🔑": "🎉", "𝔘": ["💯"]}
        assert db.sessions.list(user_id="𝔘ser").items[0].id == sid
        (message,) = db.messages.list(sid)
        assert message.content == "emoji 🏳️‍🌈 𝔘𝔫𝔦𝔠𝔬𝔡𝔢" and message.metadata == {"😀": "😀"}
        assert db.state.get("🔑", scope=f"session:{sid}") == "🗝️"
        # binary NO PAD collation: case, trailing spaces and accents all make different ids
        for variant in ("Id", "id", "id ", "íd"):
            db.sessions.create(variant, title=variant)
        assert [db.sessions.get(v).title for v in ("Id", "id", "id ", "íd")] == [
            "Id",
            "id",
            "id ",
            "íd",
        ]
    collations = _raw_rows(
        mysql_url,
        "SELECT table_name, table_collation FROM information_schema.tables"
        " WHERE table_schema = DATABASE() AND table_name LIKE 'praisondb%'"
        " AND table_name <> 'praisondb_alembic_version'",
    )
    assert len(collations) == len(TABLES)
    assert {c for _, c in collations} == {sql_types.MYSQL_COLLATION}


def test_wrong_password_is_a_config_error_without_the_password(mysql_url: str) -> None:  # noqa: F811
    wrong = mysql_url.replace("root@", "root:Wr0ng-Pw-Zz@", 1)
    with pytest.raises(ConfigError) as caught:
        open_conversation_store(wrong)
    assert "Wr0ng" not in str(caught.value) and "***" in str(caught.value)


def _pragmas(store: SQLStore) -> tuple[object, ...]:
    pooled = store._engine.raw_connection()
    try:
        conn = pooled.driver_connection
        assert conn is not None
        return tuple(
            conn.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
        )
    finally:
        pooled.close()


def test_sqlite_defaults_and_overrides(tmp_path: Path) -> None:
    store = open_conversation_store(f"sqlite:///{tmp_path / 'a.db'}")
    assert isinstance(store, SQLStore)
    try:
        assert _pragmas(store) == ("wal", 1, 1, 60000)  # WAL, NORMAL, foreign keys on
    finally:
        store.close()
    store = open_conversation_store(
        f"sqlite:///{tmp_path / 'a.db'}?synchronous=FULL&busy_timeout=1234"
    )
    assert isinstance(store, SQLStore)
    try:
        assert _pragmas(store) == ("wal", 2, 1, 1234)
    finally:
        store.close()


def test_options_are_checked(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'o.db'}"
    with pytest.raises(ConfigError, match="pool_sise"):
        open_conversation_store(url, pool_sise=3)
    with pytest.raises(ConfigError, match="pool_size"):
        open_conversation_store(url + "?pool_size=lots")
    with pytest.raises(ConfigError, match="synchronous"):
        open_conversation_store(url + "?synchronous=SOMETIMES")
    store = open_conversation_store(
        url, pool_size=2, max_overflow=1, pool_timeout=5, pool_recycle=60, pool_pre_ping=True
    )
    assert isinstance(store, SQLStore)
    try:
        assert store._engine.pool.size() == 2  # type: ignore[attr-defined]
    finally:
        store.close()


def test_in_memory_sqlite_is_shared_safely_by_threads() -> None:
    with PraisonDB("sqlite://") as db:
        db.sessions.create("s")

        def writer(tag: int) -> None:
            for i in range(50):
                db.messages.append("s", "user", f"{tag}-{i}")

        threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [m.seq for m in db.messages.list("s")] == list(range(1, 201))


def test_deleting_a_session_removes_every_row(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    with PraisonDB(url) as db:
        db.sessions.create("gone")
        db.sessions.create("kept")
        for sid in ("gone", "kept"):
            db.messages.extend(sid, [{"role": "user", "content": str(i)} for i in range(3)])
            db.runs.start(sid)
            db.checkpoints.create(sid)
        assert db.sessions.delete("gone")
    with sqlite3.connect(tmp_path / "c.db") as conn:
        for table in ("messages", "runs", "checkpoints"):
            rows = conn.execute(f"SELECT session_id FROM praisondb_{table}").fetchall()  # noqa: S608
            assert {r[0] for r in rows} == {"kept"}, table


def test_expired_state_is_purged_lazily(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "ttl.db"
    with PraisonDB(f"sqlite:///{path}") as db:
        db.state.set("short", 1, ttl=0.05)
        clock.advance(0.1)
        store = db.state_store
        assert isinstance(store, SQLStore)
        store._state._last_purge = 0.0  # as if the last purge was long ago
        db.state.set("other", 2)
    with sqlite3.connect(path) as conn:
        keys = [r[0] for r in conn.execute("SELECT key FROM praisondb_state")]
    assert keys == ["other"]


def test_timestamps_are_integer_microseconds_on_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "ts.db"
    with PraisonDB(f"sqlite:///{path}") as db:
        info = db.sessions.create("s")
    with sqlite3.connect(path) as conn:
        (created,) = conn.execute("SELECT created_at FROM praisondb_sessions").fetchone()
    assert created == sql_types.to_micros(info.created_at)
    assert sql_types.from_micros(created) == info.created_at


def _rollbacks(store: SQLStore) -> int:
    """ROLLBACKs the server counted on the store's one pooled connection."""
    with store._engine.connect() as conn:
        row = conn.exec_driver_sql("SHOW SESSION STATUS LIKE 'Com_rollback'").one()
        return int(row[1])


def test_mysql_pool_rolls_back_reads_but_not_committed_appends(mysql_url: str) -> None:  # noqa: F811
    """The pool's ROLLBACK on return is skipped only after a fast-path commit.

    Reads must still end their transaction (a pooled connection left inside one would
    hold metadata locks and block migrations); a committed append needs no second
    round trip.
    """
    with PraisonDB(mysql_url, auto_migrate=True, pool_size=1, max_overflow=0) as db:
        store = db.conversations
        assert isinstance(store, SQLStore)
        session = db.sessions.create()
        db.messages.append(session.id, "user", "warm up")
        before = _rollbacks(store)
        for i in range(5):
            db.messages.append(session.id, "user", f"m{i}")
        after_appends = _rollbacks(store)
        for _ in range(3):
            assert len(db.messages.list(session.id)) == 6
        after_reads = _rollbacks(store)
        # each _rollbacks() call is itself a Connection that SQLAlchemy rolls back once
        assert after_appends - before == 1
        assert after_reads - after_appends == 3 + 1
        # and no transaction stays open: DDL from another connection does not wait
        with sa.create_engine(sql_engine.driver_url(parse_url(mysql_url))).connect() as other:
            other.exec_driver_sql("SET SESSION lock_wait_timeout = 2")
            other.exec_driver_sql("ALTER TABLE praisondb_messages COMMENT = 'not locked'")


def _floors(url: str) -> dict[str, tuple[datetime, datetime]]:
    """(updated_at, updated_floor) of every session, read through the store's own types."""
    parsed = parse_url(url)
    engine = sql_engine.create_engine(parsed, sql_engine.parse_options(parsed, {}))
    try:
        with engine.connect() as conn:
            query = sa.select(sessions.c.id, sessions.c.updated_at, sessions.c.updated_floor)
            return {sid: (at, floor) for sid, at, floor in conn.execute(query)}
    finally:
        engine.dispose()


def test_updated_filters_stay_exact_while_the_floor_lags(
    any_sql_url: str,  # noqa: F811
    clock: FakeClock,
) -> None:
    """Appends leave the indexed updated_floor alone until it trails by FLOOR_LAG; the
    updated_after / updated_before filters still answer by the exact updated_at."""
    lag = FLOOR_LAG.total_seconds()
    with PraisonDB(any_sql_url, auto_migrate=True) as db:
        db.sessions.create("busy")
        db.sessions.create("idle")
        created = db.sessions.get("busy").updated_at
        clock.advance(lag / 3)
        db.messages.append("busy", "user", "one")
        at, floor = _floors(any_sql_url)["busy"]
        assert floor == created < at  # within the lag: no index write
        cut = at  # busy was updated at the cut, idle long before it
        clock.advance(lag / 3)
        db.messages.append("busy", "user", "two")
        for step in range(4):  # the floor moves once it lags more than FLOOR_LAG
            clock.advance(lag / 2)
            db.messages.append("busy", "user", f"later {step}")
            at, floor = _floors(any_sql_url)["busy"]
            assert floor <= at <= floor + FLOOR_LAG
        assert floor > created
        assert db.sessions.get("busy").updated_at == at
        assert [s.id for s in db.sessions.list(updated_after=cut).items] == ["busy"]
        assert [s.id for s in db.sessions.list(updated_after=at).items] == ["busy"]
        later = at + timedelta(microseconds=1)
        assert db.sessions.list(updated_after=later).items == []
        assert [s.id for s in db.sessions.list(updated_before=cut).items] == ["idle"]
        assert {s.id for s in db.sessions.list(updated_before=later).items} == {"busy", "idle"}
        assert db.sessions.count(updated_after=cut) == 1
        db.sessions.update("idle", title="touched")  # every other write sets both equal
        at, floor = _floors(any_sql_url)["idle"]
        assert at == floor > cut
