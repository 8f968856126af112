"""Around the routes: rate limits, CORS, the access log, hostile bodies behind auth."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from praisondb import PraisonDB
from praisondb.server.app import create_app
from praisondb.server.auth import Authenticator, RateLimiter
from praisondb.server.keys import split_key
from tests.server.secured import Secured, secured_app


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[Secured]:
    yield from secured_app(tmp_path)


def test_the_token_bucket_allows_its_rate_and_says_when_to_come_back() -> None:
    bucket = RateLimiter()
    assert [bucket.take("k", 2.0, now=100.0) for _ in range(2)] == [0.0, 0.0]
    assert bucket.take("k", 2.0, now=100.0) == pytest.approx(0.5)
    assert bucket.take("k", 2.0, now=100.5) == 0.0  # half a second refills one request
    assert bucket.take("other", 2.0, now=100.5) == 0.0  # buckets are per key
    assert bucket.take("slow", 0.1, now=0.0) == 0.0  # below 1/s: a burst of one
    assert bucket.take("slow", 0.1, now=1.0) == pytest.approx(9.0)


def test_a_key_over_its_rate_gets_429_with_retry_after(srv: Secured) -> None:
    statuses = [srv.client.get("/sessions", headers=srv.as_("slow")).status_code for _ in range(4)]
    # rate 2/s, a burst of two: the test's four calls take far less than the half second
    # one refill needs, unless the machine stalls (then fewer are refused, never none)
    assert statuses[:2] == [200, 200]
    assert 429 in statuses[2:]
    refused = srv.client.get("/sessions", headers=srv.as_("slow"))
    if refused.status_code == 429:
        assert int(refused.headers["Retry-After"]) >= 1
        assert refused.json()["error"] == "BackendUnavailable"
        assert "rate limit" in refused.json()["detail"]
    # other keys, even of the same tenant, are not limited by it
    assert srv.client.get("/sessions", headers=srv.as_("alice")).status_code == 200


def test_a_default_rate_covers_keys_without_one(tmp_path: Path) -> None:
    for srv in secured_app(tmp_path, default_rate=1.0):
        assert srv.client.get("/sessions", headers=srv.as_("carol")).status_code == 200
        assert srv.client.get("/sessions", headers=srv.as_("carol")).status_code == 429


def test_cors_is_off_by_default_and_on_for_named_origins(tmp_path: Path) -> None:
    db = PraisonDB(f"sqlite:///{tmp_path}/cors.db", auto_migrate=True)
    preflight = {
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }
    with TestClient(create_app(db)) as client:
        got = client.get("/healthz", headers={"Origin": "https://app.example"})
        assert "access-control-allow-origin" not in got.headers
        assert (
            "access-control-allow-origin"
            not in client.options("/sessions", headers=preflight).headers
        )
    app = create_app(db, cors_origins=["https://app.example"])
    with TestClient(app) as client:
        allowed = client.options("/sessions", headers=preflight)
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
        other = client.options("/sessions", headers={**preflight, "Origin": "https://evil.example"})
        assert other.status_code == 400
        assert "access-control-allow-origin" not in other.headers
    db.close()


def test_the_access_log_names_the_key_never_a_secret_or_content(
    srv: Secured, caplog: pytest.LogCaptureFixture
) -> None:
    minted = srv.client.post("/sessions/t/token", json={}, headers=srv.as_("alice"))
    assert minted.status_code == 404  # no session "t" yet
    secret_text = "my card number is 4111-1111-1111-1111"
    with caplog.at_level(logging.DEBUG):
        caplog.clear()  # the line above may be logged, by the logger's level before this
        srv.client.post(
            "/agents/echo/sessions/t/chat?note=private-query",
            json={"message": secret_text},
            headers=srv.as_("alice"),
        )
        token = srv.client.post("/sessions/t/token", json={}, headers=srv.as_("alice"))
        srv.client.get("/sessions/t", headers=srv.as_(f"token:{token.json()['token']}"))
        srv.client.get("/sessions", headers=srv.as_("gone"))
        srv.client.get("/sessions", headers={"Authorization": "Bearer pdb_typo-secret-value"})
        srv.client.put("/state/app/card", json={"value": secret_text}, headers=srv.as_("carol"))
    lines = [r.getMessage() for r in caplog.records if r.name == "praisondb.server.access"]
    assert len(lines) == 6, lines
    assert lines[0].startswith("POST /agents/echo/sessions/t/chat 200 ")
    assert "tenant=acme key=alice" in lines[0]
    assert "key=token" in lines[2] and lines[2].startswith("GET /sessions/t 200")
    assert lines[3].startswith("GET /sessions 401") and lines[4].startswith("GET /sessions 401")
    # what the server process logs (httpx's own lines are the test client's, not the server's)
    server_side = [r for r in caplog.records if not r.name.startswith("httpx")]
    everything = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in server_side)
    for secret in [*srv.keys.values(), token.json()["token"], "typo-secret-value"]:
        assert secret not in everything
        parts = split_key(secret)  # a key's secret alone (which may itself hold "_")
        assert parts is None or parts[1] not in everything
    for content in (secret_text, "4111", "private-query", "echo("):
        assert content not in everything


def test_an_oversized_body_is_refused_before_and_after_auth(tmp_path: Path) -> None:
    db = PraisonDB(f"sqlite:///{tmp_path}/big.db", auto_migrate=True)
    from praisondb.server.keys import KeyStore

    key = KeyStore(db).create("k")
    app = create_app(db, auth=Authenticator(db, cache_seconds=0.0), max_body_bytes=4096)
    big = {"message": "x" * 10_000}
    with TestClient(app) as client:
        anonymous = client.post("/agents/none/sessions/s/chat", json=big)
        assert anonymous.status_code == 401  # refused without reading the body
        authorised = client.put(
            "/state/app/big",
            json={"value": "x" * 10_000},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert authorised.status_code == 413, authorised.text
        assert "--max-body" in authorised.json()["detail"]
    db.close()


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[1, 2]", b'{"message": 5}', b'{"message": ""}', b"\xff\xfe", b""],
)
def test_malformed_bodies_are_typed_errors_behind_auth(srv: Secured, body: bytes) -> None:
    headers = {**srv.as_("alice"), "Content-Type": "application/json"}
    response = srv.client.post("/agents/echo/sessions/m/chat", content=body, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "ValidationError"
    assert srv.client.post("/agents/echo/sessions/m/chat", content=body).status_code == 401


def test_hostile_path_ids_are_typed_errors(srv: Secured) -> None:
    headers = srv.as_("alice")
    long_id = "x" * 300
    got = srv.client.post(
        f"/agents/echo/sessions/{long_id}/chat", json={"message": "hi"}, headers=headers
    )
    assert got.status_code == 422 and got.json()["error"] == "ValidationError"
    tenant_long = "y" * 250  # fits 255 for the default tenant, not with acme's prefix
    got = srv.client.post(
        f"/agents/echo/sessions/{tenant_long}/chat", json={"message": "hi"}, headers=headers
    )
    assert got.status_code == 422 and "too long for tenant" in got.json()["detail"]
    got = srv.client.get("/agents/echo/sessions/s/messages?last=abc", headers=headers)
    assert got.status_code == 422


def test_idle_buckets_are_forgotten_past_the_limit() -> None:
    bucket = RateLimiter(max_buckets=3)
    for n in range(3):
        bucket.take(f"token-{n}", 1.0, now=0.0)
    assert bucket.take("token-3", 1.0, now=0.5) == 0.0  # four, none refilled yet: kept
    assert len(bucket._buckets) == 4
    assert bucket.take("busy", 1.0, now=1.2) == 0.0  # the first three are full again
    assert sorted(bucket._buckets) == ["busy", "token-3"]


def test_an_unreachable_key_store_is_503_not_401(tmp_path: Path) -> None:
    from praisondb.server.keys import KeyStore

    url = f"sqlite:///{tmp_path}/keys.db"
    with PraisonDB(url, auto_migrate=True) as keys_db:
        key = KeyStore(keys_db).create("k")
    # the server's state store (where keys live) does not answer: nothing listens on port 9
    db = PraisonDB(url, state_url="redis://127.0.0.1:9/0", state_options={"retry_attempts": 1})
    with TestClient(create_app(db, auth=Authenticator(db, cache_seconds=0.0))) as client:
        response = client.get("/sessions", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 503, response.text
    assert response.json()["error"] in {"DatabaseClosed", "BackendUnavailable"}


def test_a_principal_set_by_an_outer_layer_is_kept(srv: Secured) -> None:
    """Headers cannot forge it: only ASGI code in the process can set the scope key."""
    forged = srv.client.get("/sessions", headers={"praisondb.principal": "acme"})
    assert forged.status_code == 401
