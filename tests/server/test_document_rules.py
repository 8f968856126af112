"""The document's rules are the app's: its id and scope schemas accept exactly what
check_id and check_scope accept, and what fuzzing against it found in the app stays fixed."""

from __future__ import annotations

import re
from typing import Any

import pytest

from praisondb import PraisonDB, ValidationError
from praisondb.server.openapi_types import ETAG, ID, SCOPE
from praisondb.validation import check_id, check_scope
from tests.server.test_api import Client, session_body


def _valid(schema: dict[str, Any], value: str) -> bool:
    """``value`` against a string schema's length, pattern and ``not: enum`` (the
    pattern's anchors as ECMA 262 reads them: ``$`` is the end, even before a newline)."""
    return (
        schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value))
        and _matches(schema["pattern"], value)
        and value not in schema.get("not", {}).get("enum", ())
    )


def _matches(pattern: str, value: str) -> bool:
    return re.fullmatch(pattern.removeprefix("^").removesuffix("$"), value) is not None


def _accepted(check: Any, value: str) -> bool:
    try:
        check(value)
    except ValidationError:
        return False
    return True


IDS = [
    "a",
    "a b",
    "ä/..",
    "x" * 255,
    "x" * 256,
    "",
    "a\x00",
    "a\nb",
    "a\n",
    "a\x7f",
    "\x1f",
    "é" * 255,
]
SCOPES = ["app", "temp", "user", "session", "user:", "user:u", "session:s/1", "ns", "ns:x y"]
SCOPES += [
    "Ns",
    "9ns",
    "ns:a\nb",
    "ns:a\n",
    "user:a\x00",
    "user:" + "x" * 315,
    "user:" + "x" * 316,
    "",
]


@pytest.mark.parametrize("value", IDS)
def test_the_id_schema_is_check_id(value: str) -> None:
    assert _valid(ID, value) == _accepted(check_id, value)


@pytest.mark.parametrize("value", SCOPES)
def test_the_scope_schema_is_check_scope(value: str) -> None:
    assert _valid(SCOPE, value) == _accepted(check_scope, value)


@pytest.fixture
def api(app_db: PraisonDB) -> Client:
    return Client(app_db)


@pytest.mark.parametrize("tag", ['"²"', '"99999999999999999999"'])
def test_an_if_match_no_version_can_have_is_422_not_500(api: Client, tag: str) -> None:
    assert not _matches(ETAG["pattern"], tag)
    headers = {"If-Match": tag.encode("latin-1", "replace")}
    reply = api("DELETE", "/state/app/k", headers=headers)
    assert reply.status_code == 422 and reply.json()["error"] == "ValidationError"


def test_whole_floats_in_a_body_are_integers(api: Client) -> None:
    """JSON Schema (so the document) calls 2.0 an integer; the app now agrees."""
    body = {**session_body("s"), "message_count": 0.0, "last_seq": 0.0}
    assert api("PUT", "/sessions/s", json=body).status_code == 204
    assert api("POST", "/state/app/n/incr", json={"amount": 2.0}).json() == {"value": 2}
    assert api("POST", "/state/app/n/incr", json={"amount": 2.5}).status_code == 422


def test_incr_of_a_stored_non_integer_is_a_conflict(api: Client) -> None:
    """The request is valid; the entry's state is what refuses it: 409, still named
    ValidationError so the client raises what the store raised."""
    api("PUT", "/state/app/k", json={"value": "text"})
    reply = api("POST", "/state/app/k/incr", json={"amount": 1})
    assert reply.status_code == 409 and reply.json()["error"] == "ValidationError"
    assert reply.headers["content-type"] == "application/problem+json"
    big = 2**63 - 1
    api("PUT", "/state/app/big", json={"value": big})
    reply = api("POST", "/state/app/big/incr", json={"amount": 1})
    assert reply.status_code == 409 and reply.json()["error"] == "ValidationError"


def test_a_time_outside_utc_years_is_422_not_500(api: Client) -> None:
    """0001-01-01T00:00+05:00 is in year 0 in UTC, where the app keeps times: it was a 500."""
    early = "0001-01-01T00:00:00+05:00"
    reply = api("PUT", "/sessions/s", json={**session_body("s"), "created_at": early})
    assert reply.status_code == 422 and "outside years 1..9999" in reply.json()["detail"]
    assert api("GET", "/sessions", params={"updated_after": early}).status_code == 422
    reply = api("PUT", "/state/app/k", json={"value": 1, "expires_at": early})
    assert reply.status_code == 422
