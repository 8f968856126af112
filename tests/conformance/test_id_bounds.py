"""Listing spans by id prefix and leaving an id prefix out (``list_spans(id_prefix=...,
exclude_id_prefix=...)``, ``SessionQuery.exclude_id_prefix``): ranges on the id, so the
store hands back only the rows inside the bounds, pages included (the server lists a
tenant's spans under ``~T~`` this way, and its default tenant's sessions and spans with
the tenants' ``~`` range left out)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from praisondb import PraisonDB
from praisondb.model import SessionInfo, Span
from praisondb.stores.base import SessionQuery
from tests.conformance.test_session_prefix import leaf_scans

BASE = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)


def _save(db: PraisonDB, ids: list[str], uid: str) -> list[Span]:
    """One span per id, started one millisecond apart in the order given."""
    spans = [
        Span(
            f"t-{uid}",
            "step",
            id=span_id,
            user_id=f"u-{uid}",
            started_at=BASE + timedelta(milliseconds=n),
        )
        for n, span_id in enumerate(ids)
    ]
    for span in spans:
        db.conversations.save_span(span)
    return spans


def test_a_span_listing_by_id_prefix_returns_only_that_prefix(db: PraisonDB, uid: str) -> None:
    mine = f"~{uid}%_~"  # LIKE wildcards, taken literally
    own = [f"{mine}s{i}" for i in range(5)]
    others = [f"~{uid}zz~s{i}" for i in range(30)]  # what '%_' would match as a pattern
    others += [f"~{uid}%_}}s", f"~{uid}%_s", f"~{uid}%_"]
    spans = _save(db, others[:15] + own + others[15:], uid)
    store = db.conversations
    found = store.list_spans(id_prefix=mine)
    assert [s.id for s in found] == own  # oldest first; no other id left the store
    assert found == [s for s in spans if s.id in own]
    assert [s.id for s in store.list_spans(id_prefix=mine, limit=2)] == own[-2:]
    assert [s.id for s in store.list_spans(id_prefix=mine, trace_id=f"t-{uid}")] == own
    assert [s.id for s in store.list_spans(id_prefix=mine, user_id=f"u-{uid}")] == own
    assert store.list_spans(id_prefix=mine, trace_id=f"t-{uid}-other") == []
    assert store.list_spans(id_prefix=f"~{uid}nobody~") == []
    wider = store.list_spans(id_prefix=f"~{uid}%")
    assert sorted(s.id for s in wider) == sorted([*own, *others[-3:]])


def test_a_span_listing_leaves_an_excluded_prefix_out(db: PraisonDB, uid: str) -> None:
    left_out = f"~{uid}~"
    plain = [f"{uid}-s{i}" for i in range(4)]
    tenants = [f"{left_out}s{i}" for i in range(30)] + [f"{left_out}"]
    _save(db, tenants[:10] + plain[:2] + tenants[10:] + plain[2:], uid)
    store = db.conversations
    found = store.list_spans(user_id=f"u-{uid}", exclude_id_prefix=left_out)
    assert [s.id for s in found] == plain  # the excluded range's rows stayed in the store
    assert [s.id for s in store.list_spans(trace_id=f"t-{uid}", exclude_id_prefix="~")] == plain
    limited = store.list_spans(trace_id=f"t-{uid}", exclude_id_prefix=left_out, limit=3)
    assert [s.id for s in limited] == plain[-3:]
    both = store.list_spans(id_prefix=f"~{uid}", exclude_id_prefix=left_out)
    assert both == []  # every '~uid' span is inside the excluded range
    near = _save(db, [f"~{uid}}}x", f"~{uid}x"], uid)  # next to the range, outside it
    both = store.list_spans(id_prefix=f"~{uid}", exclude_id_prefix=left_out)
    assert both == near


def _pages(db: PraisonDB, query: SessionQuery) -> tuple[list[str], int]:
    """The ids of every page of ``query``, and how many rows the store calls returned."""
    ids: list[str] = []
    returned, cursor = 0, None
    while True:
        fields = {name: getattr(query, name) for name in query.__dataclass_fields__}
        page = db.conversations.list_sessions(SessionQuery(**{**fields, "cursor": cursor}))
        returned += len(page.items)
        ids.extend(s.id for s in page.items)
        if page.next_cursor is None:
            return ids, returned
        cursor = page.next_cursor


def test_a_session_listing_leaves_an_excluded_prefix_out(db: PraisonDB, uid: str) -> None:
    outer = f"{uid}/"
    left_out = f"{outer}~"
    plain = [f"{outer}a{i}" for i in range(5)]
    tenants = [f"{left_out}t{n % 3}~s{n}" for n in range(40)]
    now = datetime.now(timezone.utc)
    for n, session_id in enumerate(plain[:2] + tenants + plain[2:]):
        at = now + timedelta(milliseconds=n)
        info = SessionInfo(id=session_id, user_id=f"u-{uid}", created_at=at, updated_at=at)
        db.conversations.put_session(info)
    newest_first = list(reversed(plain))
    query = SessionQuery(id_prefix=outer, exclude_id_prefix=left_out, limit=2)
    ids, returned = _pages(db, query)
    assert ids == newest_first
    assert returned == len(plain)  # no excluded row left the store
    by_user = SessionQuery(user_id=f"u-{uid}", exclude_id_prefix=left_out, limit=3)
    assert _pages(db, by_user) == (newest_first, len(plain))
    assert db.conversations.count_sessions(query) == len(plain)
    assert db.conversations.count_sessions(by_user) == len(plain)
    inside = SessionQuery(id_prefix=f"{left_out}t1~", exclude_id_prefix=left_out)
    assert db.conversations.list_sessions(inside).items == []
    assert db.conversations.count_sessions(inside) == 0


@pytest.mark.backends("postgres")
def test_postgres_reads_only_the_prefix_spans_through_the_primary_key(
    backend_url: str, uid: str
) -> None:
    """EXPLAIN ANALYZE of the store's own span listing: with 29 other prefixes' spans in
    the table, the scan reads that prefix's rows only, through the primary key."""
    import sqlalchemy as sa

    from praisondb.stores.sql.schema import spans

    with PraisonDB(backend_url, auto_migrate=True) as db:
        store: Any = db.conversations
        rows = [
            {
                "id": f"~{uid}{n % 30}~s{n}",
                "trace_id": f"t-{uid}",
                "name": "step",
                "status": "ok",
                "attributes": {},
                "started_at": BASE + timedelta(microseconds=n),
            }
            for n in range(6000)
        ]
        with store._engine.begin() as conn:
            conn.execute(spans.insert(), rows)
            conn.execute(sa.text("ANALYZE praisondb_spans"))
        _, build, values = store._span_listing(None, None, None, False, 50, f"~{uid}7~", None)
        stmt = build().params(values)
        sql = stmt.compile(dialect=store._engine.dialect, compile_kwargs={"literal_binds": True})
        with store._engine.connect() as conn:
            plan = conn.execute(sa.text(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")).scalar_one()
    scans = list(leaf_scans(plan[0]["Plan"]))
    assert scans and all(s.get("Index Name") == "pk_praisondb_spans" for s in scans), scans
    assert sum(s["Actual Rows"] for s in scans) == 6000 // 30  # that prefix's rows only
