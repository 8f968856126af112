"""Memories in SQL and MongoDB beyond the conformance suite: migration 0004 both ways with
data, each engine's full-text structures, bound query text, SQLite VACUUM, MongoDB's
indexes."""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from praisondb import PraisonDB
from praisondb.model import MemoryItem, utcnow
from praisondb.stores.sql import engine as sql_engine
from praisondb.stores.sql import migrate
from praisondb.stores.sql.schema import sessions
from praisondb.urls import parse_url
from tests.conftest import private_url
from tests.unit.sql_fixtures import any_sql_url  # noqa: F401

MEMORY_TABLES = {"praisondb_memories", "praisondb_memory_scopes"}


def _memory(owner: str, text: str, quality: float = 0.5) -> MemoryItem:
    return MemoryItem(text=text, scope="user", owner=owner, quality=quality)


def _fulltext_structures(engine: sa.Engine) -> set[str]:
    """What migration 0004 made for full-text search on this dialect."""
    inspector = sa.inspect(engine)
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            return {
                str(row[0])
                for row in conn.execute(
                    sa.text("SELECT name FROM sqlite_master WHERE name LIKE '%memories_fts%'")
                )
            }
    if not inspector.has_table("praisondb_memories"):
        return set()
    if engine.dialect.name == "postgresql":
        columns = {c["name"] for c in inspector.get_columns("praisondb_memories")}
        indexes = {str(ix["name"]) for ix in inspector.get_indexes("praisondb_memories")}
        return (columns | indexes) & {"search_vector", "ix_praisondb_memories_search"}
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA ="
                " DATABASE() AND TABLE_NAME = 'praisondb_memories' AND INDEX_TYPE = 'FULLTEXT'"
            )
        )
        return {str(row[0]) for row in rows}


EXPECTED = {
    "sqlite": {
        "praisondb_memories_fts",
        "praisondb_memories_fts_insert",
        "praisondb_memories_fts_delete",
        "praisondb_memories_fts_update",
        # FTS5's shadow tables
        "praisondb_memories_fts_data",
        "praisondb_memories_fts_idx",
        "praisondb_memories_fts_docsize",
        "praisondb_memories_fts_config",
    },
    "postgresql": {"search_vector", "ix_praisondb_memories_search"},
    "mysql": {"ft_praisondb_memories_text"},
}


def test_the_memories_revision_keeps_data_both_ways(any_sql_url: str) -> None:  # noqa: F811
    """0004 adds memories to a database holding sessions; memories are searchable after
    it; a downgrade to 0003 removes every memory structure (FTS tables and triggers too)
    and keeps the sessions; upgrading again works from empty."""
    assert migrate.upgrade(any_sql_url, "0003") == "0003"
    engine = sa.create_engine(sql_engine.driver_url(parse_url(any_sql_url)))
    dialect = "mysql" if engine.dialect.name in ("mysql", "mariadb") else engine.dialect.name
    try:
        now = utcnow()
        with engine.begin() as conn:
            conn.execute(
                sessions.insert().values(
                    id="s-kept",
                    metadata={},
                    created_at=now,
                    updated_at=now,
                    updated_floor=now,
                    message_count=0,
                    last_seq=0,
                )
            )
        assert not MEMORY_TABLES & set(sa.inspect(engine).get_table_names())
        assert migrate.upgrade(any_sql_url) == migrate.head() == "0004"
        assert set(sa.inspect(engine).get_table_names()) >= MEMORY_TABLES
        assert _fulltext_structures(engine) == EXPECTED[dialect]
        assert migrate.check(any_sql_url) == []
        with PraisonDB(any_sql_url) as db:
            store: Any = db.conversations
            item = _memory("u-1", "Whiskers the cat likes sardines")
            assert store.add_memory(item, max_items=5) == []
            assert [m.id for m, _ in store.search_memories("user", "u-1", "sardines", limit=3)] == [
                item.id
            ]
            assert db.sessions.get("s-kept").id == "s-kept"
        assert migrate.downgrade(any_sql_url, "0003") == "0003"
        sa.inspect(engine).clear_cache()
        assert not MEMORY_TABLES & set(sa.inspect(engine).get_table_names())
        assert _fulltext_structures(engine) == set()
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM praisondb_sessions")).scalar() == 1
        assert migrate.upgrade(any_sql_url) == "0004"
        with PraisonDB(any_sql_url) as db:
            store = db.conversations
            assert store.count_memories() == 0
            again = _memory("u-1", "sardines again")
            store.add_memory(again)
            assert [m.id for m, _ in store.search_memories("user", "u-1", "sardines", limit=3)] == [
                again.id
            ]
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///unused.db", ["USING fts5", "tokenize='unicode61'", "CREATE TRIGGER"]),
        ("postgresql://u:pw@nohost/db", ["tsvector", "to_tsvector('simple'", "USING gin"]),
        ("mysql://u:pw@nohost/db", ["FULLTEXT", "utf8mb4_unicode_ci"]),
    ],
)
def test_offline_mode_writes_the_fulltext_ddl(url: str, expected: list[str]) -> None:
    out = io.StringIO()
    migrate.upgrade(url, "0003:0004", sql=True, output=out)
    sql = out.getvalue()
    assert "CREATE TABLE praisondb_memories" in sql
    for fragment in expected:
        assert fragment in sql


def test_the_query_text_is_bound_never_spliced(any_sql_url: str) -> None:  # noqa: F811
    """The statement text of a search never holds the query's words: they travel as one
    bound parameter, after the shared tokenizer kept only letters and digits."""
    migrate.upgrade(any_sql_url)
    with PraisonDB(any_sql_url) as db:
        store: Any = db.conversations
        store.add_memory(_memory("u-2", "zqxmarker lives here"))
        seen: list[tuple[str, Any]] = []

        def record(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
            seen.append((statement, params))

        sa.event.listen(store._engine, "before_cursor_execute", record)
        try:
            hits = store.search_memories("user", "u-2", "zqxmarker'; DROP TABLE x; --", limit=3)
        finally:
            sa.event.remove(store._engine, "before_cursor_execute", record)
        assert len(hits) == 1
        searches = [(s, p) for s, p in seen if "praisondb_memories" in s]
        assert searches
        for statement, params in searches:
            assert "zqxmarker" not in statement and "DROP" not in statement
            assert "zqxmarker" in repr(params)
            assert ";" not in repr(params) and "--" not in repr(params)


def test_sqlite_search_survives_vacuum(tmp_path: Path) -> None:
    """FTS5 is keyed by ``num`` (INTEGER PRIMARY KEY, a stable rowid): VACUUM, which may
    renumber the implicit rowids of other tables, leaves the index pointing right."""
    path = tmp_path / "vacuumed.db"
    with PraisonDB(f"sqlite:///{path}") as db:
        store: Any = db.conversations
        items = [_memory("u-3", f"entry number {i} word{i}") for i in range(40)]
        store.put_memories(items)
        for item in items[:30:2]:
            assert store.delete_memory(item.id)
    with sqlite3.connect(path) as conn:
        conn.execute("VACUUM")
        conn.execute(
            "INSERT INTO praisondb_memories_fts(praisondb_memories_fts) VALUES ('integrity-check')"
        )
    with PraisonDB(f"sqlite:///{path}") as db:
        store = db.conversations
        for i, item in enumerate(items):
            hits = store.search_memories("user", "u-3", f"word{i}", limit=3)
            expected = [] if i < 30 and i % 2 == 0 else [item.id]
            assert [m.id for m, _ in hits] == expected


@pytest.fixture(scope="module")
def mongo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from private_url("mongodb", tmp_path_factory)


def test_mongodb_memory_indexes(mongo_url: str) -> None:
    """Migration 2: a text index scoped by (scope, owner) with no language rules, and the
    listing and eviction indexes; a search uses the text index within one scope."""
    with PraisonDB(mongo_url) as db:
        store: Any = db.conversations
        store.add_memory(_memory("u-4", "running shoes"))
        assert store.search_memories("user", "u-4", "running", limit=1)
        assert store.search_memories("user", "u-4", "run", limit=1) == []  # no stemming
        indexes = store._db.memories.index_information()
    text = indexes["memories_text"]
    assert text["default_language"] == "none"
    assert [k for k, _ in text["key"]][:2] == ["scope", "owner"]
    keys = [[k for k, _ in ix["key"]] for ix in indexes.values()]
    assert ["scope", "owner", "created_at", "_id"] in keys
    assert ["scope", "owner", "quality", "created_at", "_id"] in keys
