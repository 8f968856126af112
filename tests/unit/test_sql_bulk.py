"""SQL specifics of put_session_batch / put_messages and the fast-path reads.

The generic semantics are in tests/conformance/test_bulk_load.py; here: batches larger
than one IN (...) chunk, and reads that borrow a pooled connection in autocommit mode
(PostgreSQL) must hand it back transactional, or later writes would lose atomicity.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from praisondb import Conflict, NotFound
from praisondb.model import Message, SessionInfo
from praisondb.stores import open_conversation_store
from praisondb.stores.sql.bulk import CHUNK
from praisondb.stores.sql.store import SQLStore
from tests.unit.sql_fixtures import postgres_url, server_database  # noqa: F401


@pytest.fixture(params=["sqlite", "postgres", "mysql"])
def any_sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'bulk.db'}"
        return
    with server_database(request.param, tmp_path) as url:
        yield url


def _items(count: int, per: int) -> list[tuple[SessionInfo, list[Message]]]:
    return [
        (
            SessionInfo(f"s{n:04d}", user_id="u"),
            [
                Message(f"s{n:04d}", "user", f"m{i}", id=f"s{n:04d}-{i}", seq=i)
                for i in range(1, per + 1)
            ],
        )
        for n in range(count)
    ]


def test_batches_larger_than_one_chunk(any_sql_url: str) -> None:
    store = open_conversation_store(any_sql_url, auto_migrate=True)
    try:
        assert isinstance(store, SQLStore)
        items = _items(CHUNK + 17, 3)
        assert store.put_session_batch(items) == (CHUNK + 17) * 3
        assert store.put_session_batch(items) == 0
        for info, sent in (items[0], items[-1]):
            assert store.list_messages(info.id) == sent
            assert store.get_session(info.id).message_count == 3
        big = [Message("s0000", "user", f"x{i}", id=f"x-{i}", seq=3 + i) for i in range(1, 1200)]
        assert store.put_messages("s0000", big) == 1199  # above last_seq: no clash query
        assert store.put_messages("s0000", big + items[0][1]) == 0
        assert store.get_session("s0000").last_seq == 1202
    finally:
        store.close()


def test_reads_hand_back_transactional_connections(postgres_url: str) -> None:  # noqa: F811
    store = open_conversation_store(postgres_url, auto_migrate=True)
    try:
        assert isinstance(store, SQLStore)
        store.put_session_batch(_items(1, 2))
        for _ in range(20):  # fast-path reads run in autocommit, then restore the mode
            store.get_session("s0000")
            store.list_runs("s0000")
        clash = [Message("s0000", "user", "other", id="intruder", seq=2)]
        with pytest.raises(Conflict):
            store.put_session_batch([(SessionInfo("fresh"), []), (SessionInfo("s0000"), clash)])
        with pytest.raises(NotFound):
            store.get_session("fresh")  # nothing of the failed call is visible
        engine = store._engine  # the pool: its connections must be back in transaction mode
        with engine.connect() as conn:
            assert conn.connection.driver_connection.autocommit is False
    finally:
        store.close()
