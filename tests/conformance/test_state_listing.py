"""Listing one scope's state is a bounded read in key order: what the framework faces
page through (LangGraph's ``list(limit=10)`` of a thread, ADK's app and user keys)."""

from __future__ import annotations

from pathlib import Path

import pytest

from praisondb import PraisonDB
from tests.conftest import FakeClock


def test_pages_in_code_point_order_past_expired_and_deleted_entries(
    db: PraisonDB, uid: str, clock: FakeClock
) -> None:
    scope = f"session:{uid}"
    keys = [f"cp/{n:03}" for n in range(30)] + ["cp/é", "cp/\U0001f680", "cq", "cp"]
    for key in keys:
        db.state.set(key, key, scope=scope, ttl=5 if key.endswith(("3", "7")) else None)
    db.state.set("cp/999", 1, scope=f"{scope}x")  # a neighbouring scope stays out
    db.state.delete("cp/010", scope=scope)
    clock.advance(6)  # the keys ending in 3 or 7 expire
    live = sorted(k for k in keys if k.startswith("cp/") and k[-1] not in "37" and k != "cp/010")
    assert live[-2:] == ["cp/é", "cp/\U0001f680"]  # by code point, as everywhere
    store = db.state_store
    pages: list[str] = []
    after: tuple[str, str] | None = None
    while True:
        page = store.list_entries(scope, "cp/", limit=4, after=after)
        assert len(page) <= 4
        pages.extend(e.key for e in page)
        if len(page) < 4:
            break
        after = (scope, page[-1].key)
    assert pages == live
    assert [e.key for e in store.list_entries(scope, "cp/", limit=3)] == live[:3]
    assert [e.key for e in store.list_entries(scope, "cp/0", after=(scope, "cp/02"))] == [
        k for k in live if "cp/02" < k < "cp/1"
    ]
    assert store.list_entries(scope, "cp/", after=(f"{scope}x", "")) == []
    before = [e.key for e in store.list_entries(scope, "cp/", after=(scope[:-1], "\uffff"))]
    assert before == live  # ``after`` in an earlier scope: all of this one comes after it
    # a key created again after it expired is listed again
    db.state.set("cp/003", "back", scope=scope)
    assert "cp/003" in [e.key for e in store.list_entries(scope, "cp/00")]


@pytest.mark.backends("redis", "redis_cluster")
def test_redis_indexes_a_store_written_before_scope_indexes(uid: str, backend_url: str) -> None:
    """Entries written by an older praisondb have no index: the first listing builds it."""
    scope = f"user:{uid}"
    with PraisonDB(backend_url) as old:
        for key in ("b", "a", "c"):
            old.state.set(key, key, scope=scope)
        store = old.state_store
        client = store._client  # type: ignore[attr-defined]
        client.unlink(store._state_index(scope), store.prefix + "sxready")  # type: ignore[attr-defined]
    with PraisonDB(backend_url) as fresh:  # a process that starts on this version
        assert [e.key for e in fresh.state.list(scope)] == ["a", "b", "c"]
        assert [e.key for e in fresh.state.list(scope, limit=2)] == ["a", "b"]


@pytest.mark.backends("json")
def test_json_files_log_a_scope_written_before_key_logs(uid: str, backend_url: str) -> None:
    """A scope whose directory has no key log (an older version wrote it) is logged by
    its first listing; deletes are logged, and a log that is mostly deletes is compacted."""
    from praisondb.stores.jsonfiles.state import KEY_LOG

    scope = f"user:{uid}"
    with PraisonDB(backend_url) as db:
        for key in ("b", "a", "c"):
            db.state.set(key, key, scope=scope)
        store = db.state_store
        log = Path(store._scope_dir(scope)) / KEY_LOG  # type: ignore[attr-defined]
        log.unlink()
        assert [e.key for e in db.state.list(scope, limit=2)] == ["a", "b"]
        assert log.exists()
        for n in range(150):
            db.state.set(f"t{n}", n, scope=scope)
            db.state.delete(f"t{n}", scope=scope)
        assert len(log.read_bytes().splitlines()) < 200  # compacted on the way
        assert [e.key for e in db.state.list(scope)] == ["a", "b", "c"]
