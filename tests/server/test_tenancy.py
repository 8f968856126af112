"""Tenants share one store without seeing each other (praisondb/server/tenancy.py).

The principal comes from the auth layer; here a test wrapper sets it from headers."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import orjson
import pytest

from praisondb import PraisonDB
from praisondb.model import Page, SessionInfo, StateEntry
from praisondb.server import state as state_routes
from praisondb.server.app import create_app
from praisondb.server.auth import Principal
from praisondb.server.tenancy import Tenancy
from praisondb.server.wire import CLOCK_HEADER
from praisondb.stores.base import SessionQuery
from tests.server.test_api import session_body

STAMP = "2026-01-01T00:00:00+00:00"


class _Headers:
    """Stands in for the authenticator: the principal is named by test headers."""

    def authenticate(self, request: Any) -> Principal:  # pragma: no cover - unused
        raise NotImplementedError


class Tenants:
    def __init__(self, db: PraisonDB) -> None:
        app = create_app(db, auth=_Headers())

        async def asgi(scope: Any, receive: Any, send: Any) -> None:
            headers = dict(scope.get("headers", []))
            if scope["type"] == "http":
                scope["praisondb.principal"] = Principal(
                    tenant=headers.get(b"x-tenant", b"default").decode(),
                    session_id=headers[b"x-session"].decode() if b"x-session" in headers else None,
                )
            await app(scope, receive, send)

        self.app = asgi

    def __call__(
        self, tenant: str, method: str, path: str, session: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = {"x-tenant": tenant, **({"x-session": session} if session else {})}
        headers.update(kwargs.pop("headers", {}))

        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
                return await client.request(method, path, headers=headers, **kwargs)

        return asyncio.run(send())


@pytest.fixture
def call(app_db: PraisonDB) -> Tenants:
    return Tenants(app_db)


def message(mid: str, text: str) -> dict[str, Any]:
    return {"id": mid, "role": "user", "content": text, "metadata": {}, "created_at": STAMP}


def test_two_tenants_use_the_same_ids_without_colliding(call: Tenants, app_db: PraisonDB) -> None:
    for tenant in ("acme", "globex"):
        assert call(tenant, "POST", "/sessions", json=session_body("s")).status_code == 201
        reply = call(
            tenant, "POST", "/sessions/s/messages", json={"messages": [message("m", tenant)]}
        )
        assert reply.json()["items"][0]["session_id"] == "s"
    for tenant in ("acme", "globex"):
        items = call(tenant, "GET", "/sessions/s/messages").json()["items"]
        assert [m["content"] for m in items] == [tenant]
        listed = call(tenant, "GET", "/sessions").json()["items"]
        assert [s["id"] for s in listed] == ["s"]
        assert call(tenant, "GET", "/sessions", params={"count": "true"}).json() == {"count": 1}
    stored = sorted(s.id for s in app_db.sessions.list().items)
    assert stored == ["~acme~s", "~globex~s"]  # namespaced in the store


def test_another_tenants_records_are_404(call: Tenants) -> None:
    call("acme", "POST", "/sessions", json=session_body("only-acme"))
    run = {
        "id": "r1",
        "session_id": "only-acme",
        "model": None,
        "status": "running",
        "input_tokens": 0,
        "output_tokens": 0,
        "started_at": STAMP,
        "ended_at": None,
        "error": None,
        "metadata": {},
    }
    assert call("acme", "PUT", "/runs/r1", json=run).status_code == 204
    assert call("globex", "GET", "/sessions/only-acme").status_code == 404
    assert call("globex", "GET", "/runs/r1").status_code == 404
    assert call("globex", "GET", "/sessions").json()["items"] == []
    assert call("globex", "DELETE", "/sessions/only-acme").json() == {"deleted": False}
    assert call("acme", "GET", "/sessions/only-acme").status_code == 200
    assert call("default", "GET", "/sessions/only-acme").status_code == 404
    assert call("default", "GET", "/sessions").json()["items"] == []


def test_the_default_tenant_cannot_reach_into_a_namespace(call: Tenants) -> None:
    call("acme", "POST", "/sessions", json=session_body("s"))
    assert call("default", "GET", "/sessions/~acme~s").status_code == 422
    assert call("default", "GET", "/state/tenant:acme:app/k").status_code == 422


def test_state_is_per_tenant(call: Tenants) -> None:
    call("acme", "PUT", "/state/app/theme", json={"value": "dark"})
    call("globex", "PUT", "/state/app/theme", json={"value": "light"})
    assert call("acme", "GET", "/state/app/theme").json()["value"] == "dark"
    assert call("globex", "GET", "/state/app/theme").json()["value"] == "light"
    assert call("default", "GET", "/state/app/theme").status_code == 404
    listed = call("acme", "GET", "/state").json()["items"]
    assert [(e["scope"], e["key"], e["value"]) for e in listed] == [("app", "theme", "dark")]
    assert call("default", "GET", "/state").json()["items"] == []


def test_a_session_token_reaches_one_session(call: Tenants) -> None:
    for sid in ("mine", "other"):
        call("acme", "POST", "/sessions", json=session_body(sid))
    assert call("acme", "GET", "/sessions/mine", session="mine").status_code == 200
    assert call("acme", "GET", "/sessions/other", session="mine").status_code == 404
    assert call("acme", "GET", "/sessions/other/messages", session="mine").status_code == 404
    listed = call("acme", "GET", "/sessions", session="mine").json()["items"]
    assert [s["id"] for s in listed] == ["mine"]
    ok = call("acme", "PUT", "/state/session:mine/k", session="mine", json={"value": 1})
    assert ok.status_code == 200
    assert call("acme", "PUT", "/state/app/k", session="mine", json={"value": 1}).status_code == 404


def test_with_tenants_the_server_keeps_its_own_clock(call: Tenants) -> None:
    soon = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()
    call("acme", "PUT", "/state/app/soon", json={"value": 1, "expires_at": soon})
    ahead = str(time.time_ns() + 7200 * 10**9)
    # followed, this clock would expire the entry for everyone reading the store
    reply = call("acme", "GET", "/state/app/soon", headers={CLOCK_HEADER: ahead})
    assert reply.status_code == 200


def memory_body(mid: str, text: str) -> dict[str, Any]:
    """The body of a POST /memories in owner u1's user scope."""
    return {
        "item": {
            "id": mid,
            "text": text,
            "scope": "user",
            "owner": "u1",
            "importance": 0.5,
            "relevance": 0.5,
            "quality": 0.5,
            "metadata": {},
            "created_at": STAMP,
        }
    }


def test_memories_are_per_tenant(call: Tenants) -> None:
    assert call("acme", "POST", "/memories", json=memory_body("m1", "likes tea")).status_code == 200
    assert (
        call("globex", "POST", "/memories", json=memory_body("m1", "likes coffee")).status_code
        == 200
    )
    for tenant, text in (("acme", "likes tea"), ("globex", "likes coffee")):
        listed = call(tenant, "GET", "/memories", params={"scope": "user", "owner": "u1"})
        assert [(m["id"], m["owner"], m["text"]) for m in listed.json()["items"]] == [
            ("m1", "u1", text)
        ]
        found = call(
            tenant,
            "POST",
            "/memories/search",
            json={"scope": "user", "owner": "u1", "query": "likes", "limit": 5},
        )
        assert [r["item"]["text"] for r in found.json()["items"]] == [text]
    assert call("default", "GET", "/memories/m1").status_code == 404
    assert call("acme", "GET", "/memories/m1", session="s").status_code == 404
    assert call("globex", "DELETE", "/memories/m1").json() == {"deleted": True}
    assert call("acme", "GET", "/memories/m1").json()["text"] == "likes tea"


def _count_store_pages(db: PraisonDB, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The ids of each page the server's store call hands back, as the calls happen."""
    store = db.conversations
    real = store.list_sessions
    pages: list[list[str]] = []

    def counted(query: SessionQuery) -> Page[SessionInfo]:
        page = real(query)
        pages.append([s.id for s in page.items])
        return page

    monkeypatch.setattr(store, "list_sessions", counted)
    return pages


def _page_through(call: Tenants, tenant: str) -> list[dict[str, Any]]:
    """Every page of ``tenant``'s session listing, two sessions a page, cursor to cursor."""
    bodies: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        bodies.append(call(tenant, "GET", "/sessions", params=params).json())
        cursor = bodies[-1]["next_cursor"]
        if cursor is None:
            return bodies


def test_a_tenant_listing_reads_only_its_own_rows(
    call: Tenants, app_db: PraisonDB, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store call carries the tenant's id prefix: with many sessions of other tenants
    in the store, the rows it hands back are the tenant's own, page after page."""
    for i in range(60):
        call("globex", "POST", "/sessions", json=session_body(f"g{i}"))
    for i in range(5):
        call("acme", "POST", "/sessions", json=session_body(f"a{i}"))
    pages = _count_store_pages(app_db, monkeypatch)
    bodies = _page_through(call, "acme")
    seen = [s["id"] for body in bodies for s in body["items"]]
    for body in bodies:
        assert "~" not in orjson.dumps(body).decode()  # cursors name the caller's ids only
    assert sorted(seen) == [f"a{i}" for i in range(5)] and len(set(seen)) == 5
    returned = [i for page in pages for i in page]
    assert sorted(returned) == [f"~acme~a{i}" for i in range(5)]  # no globex row was read
    mine = call("acme", "GET", "/sessions", params={"id_prefix": "a1"}).json()["items"]
    assert [s["id"] for s in mine] == ["a1"]
    assert call("acme", "GET", "/sessions", params={"count": "true"}).json() == {"count": 5}


def test_a_tenant_state_listing_reads_only_its_own_rows(
    call: Tenants, app_db: PraisonDB, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(50):
        call("globex", "PUT", f"/state/app/k{i}", json={"value": i})
    for scope in ("app", "apple", "beta"):
        call("acme", "PUT", f"/state/{scope}/k", json={"value": scope})
    for scope in ("alpha", "zeta"):  # around the tenants' range, in the store's order
        call("default", "PUT", f"/state/{scope}/k", json={"value": scope})
    store = app_db.state_store
    real = store.list_entries
    returned: list[str] = []

    def counted(*args: Any, **kwargs: Any) -> list[StateEntry]:
        found = real(*args, **kwargs)
        returned.extend(e.scope for e in found)
        return found

    monkeypatch.setattr(store, "list_entries", counted)
    listed = call("acme", "GET", "/state").json()["items"]
    assert [e["scope"] for e in listed] == ["app", "apple", "beta"]
    assert returned == ["tenant:acme:app", "tenant:acme:apple", "tenant:acme:beta"]
    returned.clear()
    some = call("acme", "GET", "/state", params={"scope_prefix": "ap", "limit": 1}).json()
    assert [e["scope"] for e in some["items"]] == ["app"] and returned == ["tenant:acme:app"]
    after = {"scope_prefix": "ap", "after_scope": "app", "after_key": "k"}
    assert [e["scope"] for e in call("acme", "GET", "/state", params=after).json()["items"]] == [
        "apple"
    ]
    returned.clear()
    monkeypatch.setattr(state_routes, "PAGE", 4)
    theirs = call("default", "GET", "/state").json()["items"]
    assert [e["scope"] for e in theirs] == ["alpha", "zeta"]
    # the default tenant's listing jumps past the tenants' range: one page of it is read
    assert len(returned) <= 2 + 4 and returned[0] == "alpha" and returned[-1] == "zeta"


def test_a_session_token_lists_its_one_session_by_its_id(call: Tenants) -> None:
    for sid in ("mine", "mine2", "other"):
        call("acme", "POST", "/sessions", json=session_body(sid))
    listed = call("acme", "GET", "/sessions", session="mine").json()
    assert [s["id"] for s in listed["items"]] == ["mine"]  # not "mine2", though it matches
    assert call("acme", "GET", "/sessions", session="mine", params={"count": "true"}).json() == {
        "count": 1
    }
    miss = call("acme", "GET", "/sessions", session="mine", params={"id_prefix": "o"}).json()
    assert miss == {"items": [], "next_cursor": None}
    hit = call("acme", "GET", "/sessions", session="mine", params={"id_prefix": "mi"}).json()
    assert [s["id"] for s in hit["items"]] == ["mine"]


def _span(span_id: str, minute: int) -> dict[str, Any]:
    return {
        "id": span_id,
        "trace_id": "t1",
        "parent_id": None,
        "session_id": None,
        "user_id": None,
        "name": "step",
        "status": "ok",
        "started_at": f"2026-01-01T00:{minute:02d}:00+00:00",
        "ended_at": None,
        "attributes": {},
    }


def _count_spans(app_db: PraisonDB, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of the spans the store's list_spans hands back to the server, call by call."""
    store = app_db.conversations
    real = store.list_spans
    returned: list[str] = []

    def counted(**kwargs: Any) -> list[Any]:
        found = real(**kwargs)
        returned.extend(s.id for s in found)
        return found

    monkeypatch.setattr(store, "list_spans", counted)
    return returned


def test_a_span_listing_reads_only_the_callers_rows(
    call: Tenants, app_db: PraisonDB, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GET /spans with no trace or session: the store call carries the caller's id range
    (a tenant's ``~T~``, the default tenant's everything outside ``~``)."""
    for i in range(40):
        assert call("globex", "PUT", f"/spans/g{i}", json=_span(f"g{i}", i)).status_code == 204
    for i in range(3):
        call("acme", "PUT", f"/spans/a{i}", json=_span(f"a{i}", 10 + i))
        call("default", "PUT", f"/spans/d{i}", json=_span(f"d{i}", 20 + i))
    returned = _count_spans(app_db, monkeypatch)

    def listed(tenant: str, **params: Any) -> list[str]:
        returned.clear()
        return [s["id"] for s in call(tenant, "GET", "/spans", params=params).json()["items"]]

    assert listed("acme") == ["a0", "a1", "a2"]
    assert returned == ["~acme~a0", "~acme~a1", "~acme~a2"]  # no other tenant's row was read
    assert listed("acme", limit=2) == ["a1", "a2"] and len(returned) == 2
    assert listed("acme", id_prefix="a1") == ["a1"] and returned == ["~acme~a1"]
    assert listed("acme", exclude_id_prefix="a1") == ["a0", "a2"] and len(returned) == 2
    assert listed("acme", trace_id="t1") == ["a0", "a1", "a2"] and len(returned) == 3
    assert listed("default") == ["d0", "d1", "d2"] and returned == ["d0", "d1", "d2"]
    assert listed("default", limit=1) == ["d2"] and returned == ["d2"]
    assert listed("default", id_prefix="d") == ["d0", "d1", "d2"] and len(returned) == 3
    assert listed("default", exclude_id_prefix="d1") == ["d0", "d2"] and len(returned) == 3
    assert listed("default", exclude_id_prefix="d1", limit=1) == ["d2"]
    assert listed("globex", id_prefix="g3", limit=2) == ["g38", "g39"] and len(returned) == 2


def test_the_default_tenants_session_listing_skips_the_tenants_ids(
    call: Tenants, app_db: PraisonDB, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With many tenant sessions in the store (``~T~`` ids, sorting before the default
    tenant's at equal times), each page of the default tenant's listing reads no more rows
    than it shows: the tenants' id range is excluded in the store."""
    for i in range(120):
        call("globex" if i % 2 else "acme", "POST", "/sessions", json=session_body(f"t{i}"))
    for i in range(5):
        call("default", "POST", "/sessions", json=session_body(f"d{i}"))
    pages = _count_store_pages(app_db, monkeypatch)
    seen = [s["id"] for body in _page_through(call, "default") for s in body["items"]]
    assert seen == ["d4", "d3", "d2", "d1", "d0"]  # newest first (equal times: by id), once
    assert [len(page) for page in pages] == [2, 2, 1]  # one store call a page, only its rows
    assert [i for page in pages for i in page] == seen  # no tenant's row left the store
    assert call("default", "GET", "/sessions", params={"count": "true"}).json() == {"count": 5}
    pages.clear()
    left = {"exclude_id_prefix": "d1", "limit": 2}
    first = call("default", "GET", "/sessions", params=left).json()
    assert [s["id"] for s in first["items"]] == ["d4", "d3"]
    rest = call("default", "GET", "/sessions", params={**left, "cursor": first["next_cursor"]})
    assert [s["id"] for s in rest.json()["items"]] == ["d2", "d0"]
    assert sum(len(page) for page in pages) <= 6  # the caller's own exclusion: in the server
    counted_left = {"exclude_id_prefix": "d1", "count": "true"}
    assert call("default", "GET", "/sessions", params=counted_left).json() == {"count": 4}
    mine = call("acme", "GET", "/sessions", params={"exclude_id_prefix": "t1", "limit": 100})
    expected = sorted(f"t{i}" for i in range(0, 120, 2) if not f"t{i}".startswith("t1"))
    assert sorted(s["id"] for s in mine.json()["items"]) == expected


def test_only_a_shared_store_keeps_the_default_tenant_out_of_the_tilde_ids() -> None:
    token = Principal(tenant="default", session_id="s")  # not plain: bound to one session
    assert Tenancy(shared=False).id_exclusion(token, None, None) == (None, None)
    assert Tenancy(shared=False).id_exclusion(token, "x", None) == ("x", None)
    assert Tenancy(shared=True).id_exclusion(token, None, None) == ("~", None)
    assert Tenancy(shared=True).id_exclusion(token, "x", None) == ("~", "x")
    assert Tenancy(shared=True).id_exclusion(token, "x", "s") == ("x", None)
    assert Tenancy(shared=True).id_exclusion(Principal(tenant="acme"), "x", "~acme~") == (
        "~acme~x",
        None,
    )
