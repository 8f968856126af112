"""Who may do what: keys, tenants and session tokens against the real app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from praisondb.core.tokens import issue_token
from tests.server.secured import TOKEN_SECRET, Secured, secured_app


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[Secured]:
    yield from secured_app(tmp_path)


def _problem(response: object, status: int, error: str) -> None:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.json()["error"] == error  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("header", "error", "why"),
    [
        (None, "ConfigError", "no credential"),
        ("Bearer", "ConfigError", "must read"),
        ("Basic dXNlcjpwYXNz", "ConfigError", "must read"),
        ("Bearer pdb_000000000000_" + "A" * 43, "ConfigError", "not known"),
        ("Bearer pdb_typo", "ConfigError", "not a valid API key"),
        ("Bearer not-a-key-or-token", "InvalidToken", "malformed session token"),
        ("Bearer x.y", "InvalidToken", "signature does not match"),
    ],
)
def test_no_or_a_wrong_credential_is_401(
    srv: Secured, header: str | None, error: str, why: str
) -> None:
    headers = {} if header is None else {"Authorization": header}
    for method, path in [("GET", "/sessions"), ("GET", "/state/app/k"), ("POST", "/sessions")]:
        response = srv.client.request(method, path, headers=headers)
        _problem(response, 401, error)
        assert why in response.json()["detail"]
        assert response.headers["WWW-Authenticate"] == "Bearer"


def test_a_wrong_secret_for_a_real_key_id_is_401(srv: Secured) -> None:
    key = srv.keys["alice"]
    forged = key[:-1] + ("A" if key[-1] != "A" else "B")
    response = srv.client.get("/sessions", headers={"Authorization": f"Bearer {forged}"})
    _problem(response, 401, "ConfigError")


def test_the_probes_and_the_contract_answer_without_a_key(srv: Secured) -> None:
    assert srv.client.get("/healthz").status_code == 200
    assert srv.client.get("/readyz").status_code == 200


def test_a_revoked_key_is_refused_on_the_next_request(srv: Secured) -> None:
    _problem(srv.client.get("/sessions", headers=srv.as_("gone")), 401, "ConfigError")
    assert srv.client.get("/sessions", headers=srv.as_("alice")).status_code == 200
    srv.auth.keys.revoke("alice")  # as `praisondb keys revoke` does, from outside the app
    response = srv.client.get("/sessions", headers=srv.as_("alice"))
    _problem(response, 401, "ConfigError")
    assert "revoked" in response.json()["detail"]


def test_a_cached_key_is_refused_once_its_cache_entry_lapses(tmp_path: Path) -> None:
    for srv in secured_app(tmp_path, cache_seconds=3600.0):
        assert srv.client.get("/sessions", headers=srv.as_("alice")).status_code == 200
        srv.auth.keys.revoke("alice")
        # still cached: the documented window; forgetting it is what lapsing does
        assert srv.client.get("/sessions", headers=srv.as_("alice")).status_code == 200
        srv.auth.forget(srv.keys["alice"].split("_")[1])
        _problem(srv.client.get("/sessions", headers=srv.as_("alice")), 401, "ConfigError")


def test_a_tenant_never_sees_another_tenants_sessions(srv: Secured) -> None:
    assert srv.create_session("alice", "shared-name").status_code == 201
    assert srv.create_session("alice", "acme-only").status_code == 201
    # the same id in another tenant is another session
    assert srv.create_session("bob", "shared-name").status_code == 201
    _problem(srv.client.get("/sessions/acme-only", headers=srv.as_("bob")), 404, "NotFound")
    _problem(srv.client.get("/sessions/acme-only", headers=srv.as_("carol")), 404, "NotFound")
    said = srv.client.post(
        "/agents/echo/sessions/acme-only/chat", json={"message": "secret"}, headers=srv.as_("alice")
    )
    assert said.status_code == 200, said.text
    # bob's "acme-only" does not exist: no messages of alice's ever come back
    theirs = srv.client.get("/sessions/acme-only/messages", headers=srv.as_("bob"))
    assert theirs.status_code in (200, 404) and "secret" not in theirs.text
    deleted = srv.client.delete("/sessions/acme-only", headers=srv.as_("bob"))
    assert deleted.status_code == 404 or deleted.json() == {"deleted": False}
    listed = {
        who: {s["id"] for s in srv.client.get("/sessions", headers=srv.as_(who)).json()["items"]}
        for who in ("alice", "bob", "carol")
    }
    assert listed == {
        "alice": {"shared-name", "acme-only"},
        "bob": {"shared-name"},
        "carol": set(),
    }
    assert srv.client.get("/sessions/acme-only", headers=srv.as_("alice")).status_code == 200


def test_a_tenant_never_sees_another_tenants_state(srv: Secured) -> None:
    put = srv.client.put("/state/app/plan", json={"value": "gold"}, headers=srv.as_("alice"))
    assert put.status_code == 200, put.text
    _problem(srv.client.get("/state/app/plan", headers=srv.as_("bob")), 404, "NotFound")
    _problem(srv.client.get("/state/app/plan", headers=srv.as_("carol")), 404, "NotFound")
    listed = srv.client.get("/state", headers=srv.as_("bob")).json()["items"]
    assert listed == []
    assert srv.client.get("/state/app/plan", headers=srv.as_("alice")).json()["value"] == "gold"


def test_no_tenant_reaches_the_key_records(srv: Secured) -> None:
    key_id = srv.keys["alice"].split("_")[1]
    for who in ("alice", "carol"):
        got = srv.client.get(f"/state/praisondb.keys/key:{key_id}", headers=srv.as_(who))
        _problem(got, 404, "NotFound")
        put = srv.client.put(
            "/state/praisondb.keys/name:evil", json={"value": {"id": "x"}}, headers=srv.as_(who)
        )
        _problem(put, 404, "NotFound")
        listed = srv.client.get("/state", headers=srv.as_(who)).json()["items"]
        assert not [e for e in listed if e["scope"].startswith("praisondb.")]


def test_a_session_token_grants_exactly_its_session(srv: Secured) -> None:
    srv.create_session("alice", "mine")
    srv.create_session("alice", "other")
    minted = srv.client.post("/sessions/mine/token", json={"ttl": 600}, headers=srv.as_("alice"))
    assert minted.status_code == 200, minted.text
    token = f"token:{minted.json()['token']}"
    assert srv.client.get("/sessions/mine", headers=srv.as_(token)).status_code == 200
    appended = srv.client.get("/sessions/mine/messages", headers=srv.as_(token))
    assert appended.status_code == 200
    state = srv.client.put("/state/session:mine/k", json={"value": 1}, headers=srv.as_(token))
    assert state.status_code == 200, state.text
    # everything else is missing, not forbidden
    _problem(srv.client.get("/sessions/other", headers=srv.as_(token)), 404, "NotFound")
    _problem(srv.client.get("/state/app/k", headers=srv.as_(token)), 404, "NotFound")
    _problem(srv.client.get("/state/session:other/k", headers=srv.as_(token)), 404, "NotFound")
    listed = srv.client.get("/sessions", headers=srv.as_(token)).json()["items"]
    assert [s["id"] for s in listed] == ["mine"]
    # a token mints no tokens
    again = srv.client.post("/sessions/mine/token", json={}, headers=srv.as_(token))
    _problem(again, 404, "NotFound")


def test_a_token_for_another_tenants_session_is_404(srv: Secured) -> None:
    srv.create_session("alice", "acme-s")
    # a genuine token for session "acme-s", but of tenant globex: globex has no such session
    token = "token:" + issue_token("acme-s", TOKEN_SECRET, tenant="globex")
    _problem(srv.client.get("/sessions/acme-s", headers=srv.as_(token)), 404, "NotFound")
    # minting one for a session the key's tenant does not have is 404 too
    minted = srv.client.post("/sessions/acme-s/token", json={}, headers=srv.as_("bob"))
    _problem(minted, 404, "NotFound")


def test_forged_and_expired_tokens_are_401(srv: Secured) -> None:
    srv.create_session("alice", "s")
    forged = "token:" + issue_token("s", "another-secret-0123456789", tenant="acme")
    response = srv.client.get("/sessions/s", headers=srv.as_(forged))
    _problem(response, 401, "InvalidToken")
    expired = "token:" + issue_token("s", TOKEN_SECRET, tenant="acme", ttl=1, now=1_000_000)
    _problem(srv.client.get("/sessions/s", headers=srv.as_(expired)), 401, "TokenExpired")


def test_the_agent_routes_are_guarded_the_same_way(srv: Secured) -> None:
    chat = srv.client.post("/agents/echo/sessions/c/chat", json={"message": "hi"})
    _problem(chat, 401, "ConfigError")
    said = srv.client.post(
        "/agents/echo/sessions/c/chat", json={"message": "hi"}, headers=srv.as_("alice")
    )
    assert said.json() == {"reply": "echo(1): hi", "session_id": "c", "agent": "echo"}
    history = srv.client.get("/agents/echo/sessions/c/messages", headers=srv.as_("bob"))
    _problem(history, 404, "NotFound")
    mine = srv.client.get("/agents/echo/sessions/c/messages", headers=srv.as_("alice"))
    assert [m["content"] for m in mine.json()["items"]] == ["hi", "echo(1): hi"]
    assert {m["session_id"] for m in mine.json()["items"]} == {"c"}
    _problem(
        srv.client.post(
            "/agents/nobody/sessions/c/chat", json={"message": "x"}, headers=srv.as_("alice")
        ),
        404,
        "NotFound",
    )
