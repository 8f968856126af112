"""Every error a tenant sees names only the ids it sent: never the store's ``~T~id`` or
``tenant:T:scope`` spelling (praisondb/server/tenancy.py), on any route."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from praisondb.server.auth import Principal
from praisondb.server.tenancy import DEFAULT_TENANT, public_text
from tests.server.secured import Secured, secured_app
from tests.server.test_tenancy import memory_body

STAMP = "2026-01-01T00:00:00+00:00"


def _message(mid: str, text: str, seq: int = 1) -> dict[str, Any]:
    return {
        "id": mid,
        "role": "user",
        "content": text,
        "metadata": {},
        "created_at": STAMP,
        "seq": seq,
    }


def _run(rid: str, session: str) -> dict[str, Any]:
    return {
        "id": rid,
        "session_id": session,
        "model": None,
        "status": "running",
        "input_tokens": 0,
        "output_tokens": 0,
        "started_at": STAMP,
        "ended_at": None,
        "error": None,
        "metadata": {},
    }


def _checkpoint(cid: str, session: str) -> dict[str, Any]:
    return {"id": cid, "session_id": session, "seq": 0, "state": {}, "created_at": STAMP}


def _span(sid: str, session: str | None) -> dict[str, Any]:
    return {
        "id": sid,
        "trace_id": "t1",
        "parent_id": None,
        "session_id": session,
        "user_id": None,
        "name": "step",
        "kind": "internal",
        "status": "ok",
        "started_at": STAMP,
        "ended_at": None,
        "attributes": {},
        "error": None,
    }


def _session(sid: str, parent: str | None = None) -> dict[str, Any]:
    return {
        "id": sid,
        "metadata": {},
        "parent_id": parent,
        "created_at": STAMP,
        "updated_at": STAMP,
        "message_count": 0,
        "last_seq": 0,
    }


# (what, method, path, body, extra headers, the statuses the case may answer)
CASES: list[tuple[str, str, str, Any, dict[str, str], set[int]]] = [
    ("session twice", "POST", "/sessions", _session("s"), {}, {409}),
    ("missing session", "GET", "/sessions/nope", None, {}, {404}),
    ("patch missing session", "PATCH", "/sessions/nope", {"title": "x"}, {}, {404}),
    ("branch of a missing parent", "POST", "/sessions", _session("b", "nope"), {}, {201, 404, 409}),
    (
        "append to missing",
        "POST",
        "/sessions/nope/messages",
        {"messages": [_message("m", "x")]},
        {},
        {404},
    ),
    (
        "put to missing",
        "PUT",
        "/sessions/nope/messages",
        {"messages": [_message("m", "x")]},
        {},
        {404},
    ),
    (
        "message id clash",
        "POST",
        "/sessions/s/messages",
        {"messages": [_message("m1", "other")]},
        {},
        {409},
    ),
    (
        "seq clash",
        "PUT",
        "/sessions/s/messages",
        {"messages": [_message("m9", "x", seq=1)]},
        {},
        {409},
    ),
    ("messages of missing", "GET", "/sessions/nope/messages", None, {}, {200, 404}),
    ("runs of missing", "GET", "/sessions/nope/runs", None, {}, {200, 404}),
    ("missing run", "GET", "/runs/nope", None, {}, {404}),
    ("run of missing session", "PUT", "/runs/r2", _run("r2", "nope"), {}, {204, 404, 409}),
    ("missing checkpoint", "GET", "/checkpoints/nope", None, {}, {404}),
    (
        "checkpoint of missing session",
        "PUT",
        "/checkpoints/c2",
        _checkpoint("c2", "nope"),
        {},
        {204, 404, 409},
    ),
    ("missing span", "GET", "/spans/nope", None, {}, {404}),
    ("span of missing session", "PUT", "/spans/p2", _span("p2", "nope"), {}, {204, 404, 409}),
    ("stale state write", "PUT", "/state/app/k", {"value": 2}, {"If-Match": '"7"'}, {412}),
    ("create-only state write", "PUT", "/state/app/k", {"value": 2}, {"If-None-Match": "*"}, {412}),
    ("stale state delete", "DELETE", "/state/app/k", None, {"If-Match": '"7"'}, {412}),
    ("incr of a text", "POST", "/state/app/text/incr", {"amount": 1}, {}, {409}),
    ("incr past 64 bits", "POST", "/state/app/big/incr", {"amount": 2**62}, {}, {409}),
    ("missing state", "GET", "/state/app/nope", None, {}, {404}),
    ("memory id clash", "POST", "/memories", memory_body("mem1", "other"), {}, {409}),
    ("missing memory", "GET", "/memories/nope", None, {}, {404}),
    ("agent history of missing", "GET", "/agents/echo/sessions/nope/messages", None, {}, {404}),
    ("token of missing", "POST", "/sessions/nope/token", {}, {}, {404}),
]


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    """alice (tenant acme) holds a session ``s`` with message ``m1``, state ``app/k``,
    ``app/text`` and ``app/big`` and a memory ``mem1``."""
    for secured in secured_app(Path(tmp_path_factory.mktemp("tenant-errors"))):
        alice = secured.as_("alice")
        for method, path, body in [
            ("POST", "/sessions", _session("s")),
            ("POST", "/sessions/s/messages", {"messages": [_message("m1", "hi")]}),
            ("PUT", "/state/app/k", {"value": 1}),
            ("PUT", "/state/app/text", {"value": "words"}),
            ("PUT", "/state/app/big", {"value": 2**62}),
            ("POST", "/memories", memory_body("mem1", "likes tea")),
        ]:
            reply = secured.client.request(method, path, json=body, headers=alice)
            assert reply.status_code < 300, reply.text
        yield secured


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "statuses"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_a_tenants_errors_name_only_its_own_ids(
    srv: Secured,
    method: str,
    path: str,
    body: Any,
    headers: dict[str, str],
    statuses: set[int],
) -> None:
    reply = srv.client.request(method, path, json=body, headers={**srv.as_("alice"), **headers})
    assert reply.status_code in statuses, reply.text
    if reply.status_code >= 400:
        problem = reply.json()
        assert problem["status"] == reply.status_code and problem["detail"]
    assert "~acme~" not in reply.text and "tenant:" not in reply.text, reply.text


def test_public_text_takes_off_one_namespace_per_id() -> None:
    acme = Principal(tenant="acme")
    text = "session '~acme~~x~y' and state tenant:acme:tenant:b:c/k, (~acme~a) \"~acme~q\""
    assert public_text(acme, text) == (
        "session '~x~y' and state tenant:b:c/k, (a) \"q\""
    )  # what acme sent: '~x~y', 'tenant:b:c'
    assert public_text(acme, "run 'a~acme~b' not found") == "run 'a~acme~b' not found"
    default = Principal(tenant=DEFAULT_TENANT)
    assert public_text(default, "scope 'tenant:' is reserved") == "scope 'tenant:' is reserved"
