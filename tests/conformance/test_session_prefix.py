"""Listing sessions by id prefix (``SessionQuery.id_prefix``): a range on the id, so the
store hands back only that prefix's rows, pages included (the server's tenants rely on it)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from praisondb import PraisonDB
from praisondb.model import SessionInfo, utcnow
from praisondb.stores.base import SessionQuery


def _all_pages(db: PraisonDB, query: SessionQuery) -> tuple[list[SessionInfo], int]:
    """Every page of ``query``; also how many rows the store calls returned in all."""
    found: list[SessionInfo] = []
    returned, cursor = 0, None
    while True:
        page = db.conversations.list_sessions(SessionQuery(**{**_fields(query), "cursor": cursor}))
        returned += len(page.items)
        found.extend(page.items)
        if page.next_cursor is None:
            return found, returned
        cursor = page.next_cursor


def _fields(query: SessionQuery) -> dict[str, object]:
    return {name: getattr(query, name) for name in query.__dataclass_fields__}


def test_a_prefix_listing_returns_only_that_prefix_page_by_page(db: PraisonDB, uid: str) -> None:
    mine = f"~{uid}%_~"  # LIKE wildcards, taken literally
    own = [f"{mine}s{i}" for i in range(5)]
    others = [f"~{uid}zz~s{i}" for i in range(40)]  # what '%_' would match as a pattern
    others += [f"~{uid}%_}}s", f"~{uid}%_s", f"~{uid}%_"]
    for session_id in others[:20] + own + others[20:]:
        db.sessions.create(session_id, user_id=f"u-{uid}")
    found, returned = _all_pages(db, SessionQuery(id_prefix=mine, limit=2))
    assert [s.id for s in found] == list(reversed(own))  # newest first, each once
    assert returned == len(own)  # no other prefix's row left the store
    assert db.conversations.count_sessions(SessionQuery(id_prefix=mine)) == len(own)
    both = SessionQuery(id_prefix=mine, user_id=f"u-{uid}", limit=3)
    assert [s.id for s in _all_pages(db, both)[0]] == list(reversed(own))
    wider, _ = _all_pages(db, SessionQuery(id_prefix=f"~{uid}%", limit=7))
    assert sorted(s.id for s in wider) == sorted([*own, f"~{uid}%_}}s", f"~{uid}%_s", f"~{uid}%_"])
    empty = SessionQuery(id_prefix=f"~{uid}nobody~")
    assert db.conversations.list_sessions(empty).items == []
    assert db.conversations.count_sessions(empty) == 0


def test_a_prefix_listing_sees_sessions_deleted_and_added(db: PraisonDB, uid: str) -> None:
    mine = f"~{uid}~"
    for i in range(3):
        db.sessions.create(f"{mine}{i}")
    db.sessions.delete(f"{mine}1")
    db.sessions.create(f"{mine}9")
    found, _ = _all_pages(db, SessionQuery(id_prefix=mine, limit=1))
    assert [s.id for s in found] == [f"{mine}9", f"{mine}2", f"{mine}0"]


@pytest.mark.backends("redis", "redis_cluster")
def test_redis_indexes_namespaces_a_store_wrote_before_it_had_them(
    backend_url: str, uid: str
) -> None:
    """Sessions written before the per-namespace indexes existed are indexed by the first
    namespace listing (once per store: a marker key says it is done)."""
    with PraisonDB(backend_url) as db:
        store: Any = db.conversations
        mine = f"~{uid}~"
        for i in range(3):
            db.sessions.create(f"{mine}{i}")
        client = store._client
        client.delete(store._idx("ns", mine))  # as an older version left the store
        client.delete(store._idx("ns-built"))
        store._namespaces_indexed = False
        found, _ = _all_pages(db, SessionQuery(id_prefix=mine, limit=2))
        assert [s.id for s in found] == [f"{mine}2", f"{mine}1", f"{mine}0"]
        assert client.exists(store._idx("ns-built")) == 1
        assert client.zcard(store._idx("ns", mine)) == 3


@pytest.mark.backends("postgres")
def test_postgres_reads_only_the_prefix_rows_through_the_primary_key(
    backend_url: str, uid: str
) -> None:
    """EXPLAIN ANALYZE of the store's own listing statement: the rows the scan reads are the
    prefix's, found through the primary key, with 29 other prefixes' rows in the table."""
    import sqlalchemy as sa

    with PraisonDB(backend_url, auto_migrate=True) as db:
        store: Any = db.conversations
        now = utcnow()
        batch = [
            (SessionInfo(id=f"~{uid}{n % 30}~s{n}", created_at=now, updated_at=now), [])
            for n in range(6000)
        ]
        store.put_session_batch(batch)
        stmt = store._session_listing(SessionQuery(id_prefix=f"~{uid}7~", limit=50))
        sql = stmt.compile(dialect=store._engine.dialect, compile_kwargs={"literal_binds": True})
        with store._engine.connect() as conn:
            conn.execute(sa.text("ANALYZE praisondb_sessions"))
            plan = conn.execute(sa.text(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")).scalar_one()
    scans = list(leaf_scans(plan[0]["Plan"]))
    assert scans and all(s.get("Index Name") == "pk_praisondb_sessions" for s in scans), scans
    assert sum(s["Actual Rows"] for s in scans) == 6000 // 30  # that prefix's rows only


def leaf_scans(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The plan's leaf nodes: the scans that read the table or its indexes."""
    children = node.get("Plans", [])
    if not children:
        yield node
    for child in children:
        yield from leaf_scans(child)
