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


def test_memories_are_per_tenant(call: Tenants) -> None:
    def item(mid: str, text: str) -> dict[str, Any]:
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

    assert call("acme", "POST", "/memories", json=item("m1", "likes tea")).status_code == 200
    assert call("globex", "POST", "/memories", json=item("m1", "likes coffee")).status_code == 200
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


def test_a_tenant_listing_reads_only_its_own_rows(
    call: Tenants, app_db: PraisonDB, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store call carries the tenant's id prefix: with many sessions of other tenants
    in the store, the rows it hands back are the tenant's own, page after page."""
    for i in range(60):
        call("globex", "POST", "/sessions", json=session_body(f"g{i}"))
    for i in range(5):
        call("acme", "POST", "/sessions", json=session_body(f"a{i}"))
    store = app_db.conversations
    real = store.list_sessions
    returned: list[str] = []

    def counted(query: SessionQuery) -> Page[SessionInfo]:
        page = real(query)
        returned.extend(s.id for s in page.items)
        return page

    monkeypatch.setattr(store, "list_sessions", counted)
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = call("acme", "GET", "/sessions", params=params).json()
        seen.extend(s["id"] for s in body["items"])
        assert "~" not in orjson.dumps(body).decode()  # cursors name the caller's ids only
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == [f"a{i}" for i in range(5)] and len(set(seen)) == 5
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
