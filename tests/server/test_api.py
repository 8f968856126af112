"""The HTTP API itself: validation of hostile input, size limits, ETags, typed errors."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import orjson
import pytest

from praisondb import BackendUnavailable, Conflict, NotFound, PraisonDB, ValidationError
from praisondb.codec import parse_iso
from praisondb.server.app import create_app
from praisondb.server.wire import CLOCK_HEADER, NDJSON, ROWS
from praisondb.stores.http.store import _listed
from tests.server.serving import Server
from tests.servers import free_port


class Client:
    """The app in-process (httpx's ASGITransport), called synchronously."""

    def __init__(self, db: PraisonDB, **options: Any) -> None:
        self.app = create_app(db, **options)

    def __call__(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
                return await client.request(method, path, **kwargs)

        return asyncio.run(send())


@pytest.fixture
def api(app_db: PraisonDB) -> Client:
    return Client(app_db, max_body_bytes=4096)


def session_body(session_id: str) -> dict[str, Any]:
    stamp = "2026-01-01T00:00:00+00:00"
    return {
        "id": session_id,
        "metadata": {},
        "created_at": stamp,
        "updated_at": stamp,
        "message_count": 0,
        "last_seq": 0,
    }


def test_an_oversized_body_is_413_with_the_fix(api: Client) -> None:
    reply = api("POST", "/sessions", content=b"{" + b" " * 10_000 + b"}")
    assert reply.status_code == 413
    problem = reply.json()
    assert problem["error"] == "ValidationError" and "--max-body" in problem["detail"]


def test_an_oversized_chunked_body_is_413(api: Client) -> None:
    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: sent chunked
        yield b'{"x": "'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"}'

    reply = api("POST", "/sessions", content=chunks())
    assert reply.status_code == 413


@pytest.mark.parametrize(
    "body",
    [b"{", b"[]", b"null", b'"text"', b'{"id": 5}', b'{"id": "x\\u0000y"}', b"\xff\xfe"],
    ids=["truncated", "array", "null", "string", "wrong-type", "nul-in-id", "not-utf8"],
)
def test_malformed_bodies_are_422_problems(api: Client, body: bytes) -> None:
    reply = api("POST", "/sessions", content=body, headers={"content-type": "application/json"})
    assert reply.status_code == 422, reply.text
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.json()["error"] == "ValidationError"


def test_hostile_messages_are_refused(api: Client) -> None:
    assert api("POST", "/sessions", json=session_body("s")).status_code == 201
    bad = [
        {"messages": "no"},
        {
            "messages": [
                {
                    "id": "m",
                    "role": "robot",
                    "content": "x",
                    "metadata": {},
                    "created_at": "2026-01-01T00:00:00+00:00",
                }
            ]
        },
        {
            "messages": [
                {
                    "id": "m",
                    "role": "user",
                    "content": "x",
                    "metadata": [],
                    "created_at": "2026-01-01T00:00:00+00:00",
                }
            ]
        },
        {
            "messages": [
                {
                    "id": "m",
                    "role": "user",
                    "content": "x",
                    "metadata": {},
                    "created_at": "yesterday",
                }
            ]
        },
    ]
    for body in bad:
        reply = api("POST", "/sessions/s/messages", json=body)
        assert reply.status_code == 422, (body, reply.text)
    assert api("GET", "/sessions/s/messages", params={"limit": "-1"}).status_code == 422
    assert api("GET", "/sessions/s/messages", params={"after_seq": "x"}).status_code == 422
    assert api("GET", "/sessions/s").json()["message_count"] == 0


def test_ids_with_slashes_and_dots_are_one_segment(api: Client) -> None:
    for raw, path in (("a/b", "a%2Fb"), ("..", "%2E%2E"), ("50%", "50%25"), ("é", "%C3%A9")):
        assert api("POST", "/sessions", json=session_body(raw)).status_code == 201
        assert api("GET", f"/sessions/{path}").json()["id"] == raw


def test_etag_and_conditional_writes(api: Client) -> None:
    created = api("PUT", "/state/app/k", json={"value": 1}, headers={"If-None-Match": "*"})
    assert created.status_code == 200 and created.headers["etag"] == '"1"'
    again = api("PUT", "/state/app/k", json={"value": 2}, headers={"If-None-Match": "*"})
    assert again.status_code == 412 and again.json()["error"] == "Conflict"
    read = api("GET", "/state/app/k")
    assert read.headers["etag"] == '"1"' and read.json()["value"] == 1
    stale = api("PUT", "/state/app/k", json={"value": 3}, headers={"If-Match": '"7"'})
    assert stale.status_code == 412
    fresh = api(
        "PUT", "/state/app/k", json={"value": 3}, headers={"If-Match": read.headers["etag"]}
    )
    assert fresh.status_code == 200 and fresh.headers["etag"] == '"2"'
    assert api("DELETE", "/state/app/k", headers={"If-Match": '"1"'}).status_code == 412
    assert api("DELETE", "/state/app/k", headers={"If-Match": '"2"'}).json() == {"deleted": True}
    assert api("GET", "/state/app/k").status_code == 404
    assert (
        api("PUT", "/state/app/k", json={"value": 1}, headers={"If-Match": "nope"}).status_code
        == 422
    )


def test_a_retried_append_is_idempotent(api: Client) -> None:
    api("POST", "/sessions", json=session_body("s"))
    message = {
        "id": "m1",
        "role": "user",
        "content": "hi",
        "metadata": {},
        "created_at": "2026-01-01T00:00:00+00:00",
    }
    first = api("POST", "/sessions/s/messages", json={"messages": [message]})
    resent = api("POST", "/sessions/s/messages", json={"messages": [message]})
    assert first.json() == resent.json() and first.json()["items"][0]["seq"] == 1
    changed = api("POST", "/sessions/s/messages", json={"messages": [{**message, "content": "x"}]})
    assert changed.status_code == 409
    assert api("GET", "/sessions/s").json()["last_seq"] == 1


def test_rows_list_the_messages_objects_do(api: Client) -> None:
    api("POST", "/sessions", json=session_body("s"))
    stamp = "2026-01-01T00:00:00+00:00"
    new = [
        {
            "id": f"i{n}",
            "role": "user",
            "content": f"m{n}",
            "metadata": {"n": n},
            "created_at": stamp,
        }
        for n in range(3)
    ]
    assert api("POST", "/sessions/s/messages", json={"messages": new}).status_code == 201
    objects = api("GET", "/sessions/s/messages")
    rows = api("GET", "/sessions/s/messages", headers={"Accept": ROWS})
    assert rows.headers["content-type"] == ROWS
    body = rows.json()
    assert [dict(zip(body["fields"], r, strict=True)) for r in body["rows"]] == objects.json()[
        "items"
    ]
    # the client reads rows, objects (a server without rows) and rows of other fields alike
    expected = _listed(objects.json())
    assert [m.content for m in expected] == ["m0", "m1", "m2"]
    assert _listed(rows.json()) == expected
    extra = {"fields": [*body["fields"], "later"], "rows": [[*r, 1] for r in rows.json()["rows"]]}
    assert _listed(extra) == expected


def test_errors_carry_no_message_content(api: Client, caplog: pytest.LogCaptureFixture) -> None:
    api("POST", "/sessions", json=session_body("s"))
    secret = "the patient's diagnosis"
    message = {
        "id": "m",
        "role": "user",
        "content": secret,
        "metadata": {},
        "created_at": "2026-01-01T00:00:00+00:00",
    }
    api("POST", "/sessions/s/messages", json={"messages": [message]})
    reply = api("POST", "/sessions/s/messages", json={"messages": [{**message, "content": "x"}]})
    assert secret not in reply.text and secret not in caplog.text


def test_healthz_and_readyz(api: Client) -> None:
    assert api("GET", "/healthz").json() == {"status": "ok"}
    ready = api("GET", "/readyz").json()
    assert ready["status"] == "ready" and ready["schema_version"]


# -- through the client store ---------------------------------------------------------------
def test_typed_errors_cross_the_wire(server: Server) -> None:
    with PraisonDB(server.client_url) as db:
        with pytest.raises(NotFound):
            db.sessions.get("missing")
        db.sessions.create("s1")
        with pytest.raises(Conflict):
            db.sessions.create("s1")
        with pytest.raises(ValidationError):
            db.messages.append("s1", "robot", "x")
        entry = db.state.set("k", 1)
        with pytest.raises(Conflict):
            db.state.compare_and_set("k", 2, entry.version + 5)


def test_no_server_is_backend_unavailable_with_the_fix() -> None:
    port = free_port()
    with (
        PraisonDB(
            f"praisondb+http://127.0.0.1:{port}?retry_attempts=2", api_key="sk-secret-1"
        ) as db,
        pytest.raises(BackendUnavailable) as caught,
    ):
        db.sessions.get("s")
    text = str(caught.value)
    assert "praisondb serve" in text and str(port) in text and "sk-secret-1" not in text
    assert caught.value.attempts == 2


def test_the_api_key_is_sent_and_never_shown(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRAISONDB_API_KEY", "sk-from-env")
    with PraisonDB(server.client_url + "?api_key=sk-in-url") as db:
        store = db.conversations
        assert "sk-" not in repr(store) and "sk-" not in repr(db) and "sk-" not in str(store.url)
        sent = store._http._headers["Authorization"]  # type: ignore[attr-defined]
        assert sent == "Bearer sk-in-url"
    with PraisonDB(server.client_url) as db:
        sent = db.conversations._http._headers["Authorization"]  # type: ignore[attr-defined]
        assert sent == "Bearer sk-from-env"


def test_ndjson_streams_10000_messages(server: Server) -> None:
    with PraisonDB(server.client_url) as db:
        db.sessions.create("long")
        for start in range(0, 10_000, 2_000):
            db.messages.extend(
                "long",
                [
                    {"role": "user", "content": f"m{n}", "id": f"m{n}"}
                    for n in range(start, start + 2_000)
                ],
            )
    seqs = []
    with (
        httpx.Client(base_url=server.base_url) as client,
        client.stream("GET", "/sessions/long/messages", headers={"Accept": NDJSON}) as reply,
    ):
        assert reply.headers["content-type"].startswith(NDJSON)
        for line in reply.iter_lines():
            seqs.append(orjson.loads(line)["seq"])
    assert seqs == list(range(1, 10_001))
    with PraisonDB(server.client_url) as db:
        history = db.messages.list("long")  # the client streams a whole history too
        assert [m.content for m in history[:2]] == ["m0", "m1"] and len(history) == 10_000


def test_by_default_the_server_keeps_its_own_clock(api: Client) -> None:
    """A client whose clock is wrong must not expire other clients' entries and leases."""
    api("PUT", "/state/app/soon", json={"value": 1, "expires_at": _in(3600)})
    ahead = str(time.time_ns() + 7200 * 10**9)
    assert api("GET", "/state/app/soon", headers={CLOCK_HEADER: ahead}).status_code == 200


def test_the_server_follows_a_client_clock_that_runs_ahead_when_asked(app_db: PraisonDB) -> None:
    """``--follow-client-clock``: for test suites that move their clock forward."""
    api = Client(app_db, follow_client_clock=True)
    expires = "2099-01-01T00:00:00+00:00"
    api("PUT", "/state/app/ttl", json={"value": 1, "expires_at": expires})
    assert api("GET", "/state/app/ttl").status_code == 200
    late = str(int(parse_iso("2098-12-31T23:00:00+00:00").timestamp() * 1e9))
    later = str(int(parse_iso("2099-01-01T00:00:01+00:00").timestamp() * 1e9))
    # a clock more than MAX_AHEAD ahead is followed only MAX_AHEAD: the entry still lives
    assert api("GET", "/state/app/ttl", headers={CLOCK_HEADER: later}).status_code == 200
    api("PUT", "/state/app/soon", json={"value": 1, "expires_at": _in(3600)})
    ahead = str(time.time_ns() + 7200 * 10**9)
    assert api("GET", "/state/app/soon", headers={CLOCK_HEADER: ahead}).status_code == 404
    assert api("GET", "/state/app/ttl", headers={CLOCK_HEADER: late}).status_code == 200
    assert api("GET", "/state/app/ttl", headers={CLOCK_HEADER: "nonsense"}).status_code == 200


def _in(seconds: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds)).isoformat()


def test_no_caller_lists_the_api_keys_even_on_an_open_server(app_db: PraisonDB) -> None:
    """An open server (no auth) over a store that holds keys: the key records (names,
    tenants, hashes) never come out, whatever the listing's paging."""
    from praisondb.server.keys import KEY_SCOPE, KeyStore

    for n in range(3):
        KeyStore(app_db).create(f"k{n}")
    app_db.state.set("a", 1, scope="app")
    app_db.state.set("z", 1, scope="zz")
    api = Client(app_db)
    listed = api("GET", "/state", params={"limit": "1"}).json()["items"]
    everything = api("GET", "/state").json()["items"]
    assert [(e["scope"], e["key"]) for e in listed] == [("app", "a")]
    assert [(e["scope"], e["key"]) for e in everything] == [("app", "a"), ("zz", "z")]
    assert api("GET", "/state", params={"scope": KEY_SCOPE}).json()["items"] == []


def test_serve_asks_for_keys_when_its_store_holds_some(app_db: PraisonDB) -> None:
    """On loopback a server may run open, unless its store has keys: they are meant to be
    asked for."""
    from praisondb.cli.serve_security import app_options
    from praisondb.server.keys import KeyStore

    assert app_options(app_db, "127.0.0.1")["auth"] is None
    KeyStore(app_db).create("ops")
    assert app_options(app_db, "127.0.0.1")["auth"] is not None
    assert app_options(app_db, "127.0.0.1", insecure_no_auth=True)["auth"] is None
