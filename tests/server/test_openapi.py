"""The committed OpenAPI document is the app's."""

from __future__ import annotations

from pathlib import Path

import orjson

from praisondb.server.app import ROUTES
from praisondb.server.openapi import document, dumps
from praisondb.server.openapi_auth import AGENT_PATHS
from tests.server.test_api import Client

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
REGENERATE = "python -m praisondb.server openapi > docs/openapi.json"


def test_the_committed_document_matches_the_app() -> None:
    assert COMMITTED.read_bytes() == dumps(ROUTES), (
        f"docs/openapi.json differs from the app's routes; regenerate it: {REGENERATE}"
    )


def test_every_route_is_documented_and_every_operation_served() -> None:
    paths = {p: ops for p, ops in document(ROUTES)["paths"].items() if p not in AGENT_PATHS}
    served = {
        (m, r.path) for r in ROUTES if r.include_in_schema for m in r.methods or () if m != "HEAD"
    }
    assert {(m.upper(), p) for p, ops in paths.items() for m in ops} == served


def test_the_app_serves_it(app_db) -> None:  # type: ignore[no-untyped-def]
    reply = Client(app_db)("GET", "/openapi.json")
    assert orjson.loads(reply.content) == orjson.loads(COMMITTED.read_bytes())


def test_the_agent_and_token_operations_are_the_served_ones() -> None:
    from praisondb.server.agents import agent_routes

    routes = agent_routes({"a": print}, auth=object())  # type: ignore[arg-type]
    served = {(m, r.path) for r in routes for m in r.methods or () if m != "HEAD"}
    paths = document(ROUTES)["paths"]
    documented = {(m.upper(), p) for p in AGENT_PATHS for m in paths[p]}
    assert documented == served
    assert all("401" in op["responses"] for p in AGENT_PATHS for op in paths[p].values())
    assert paths["/healthz"]["get"]["security"] == []
