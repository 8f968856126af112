"""The committed OpenAPI document is the app's."""

from __future__ import annotations

from pathlib import Path

import orjson

from praisondb.server.app import ROUTES
from praisondb.server.openapi import document, dumps
from tests.server.test_api import Client

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
REGENERATE = "python -m praisondb.server openapi > docs/openapi.json"


def test_the_committed_document_matches_the_app() -> None:
    assert COMMITTED.read_bytes() == dumps(ROUTES), (
        f"docs/openapi.json differs from the app's routes; regenerate it: {REGENERATE}"
    )


def test_every_route_is_documented_and_every_operation_served() -> None:
    paths = document(ROUTES)["paths"]
    served = {
        (m, r.path) for r in ROUTES if r.include_in_schema for m in r.methods or () if m != "HEAD"
    }
    assert {(m.upper(), p) for p, ops in paths.items() for m in ops} == served


def test_the_app_serves_it(app_db) -> None:  # type: ignore[no-untyped-def]
    reply = Client(app_db)("GET", "/openapi.json")
    assert orjson.loads(reply.content) == orjson.loads(COMMITTED.read_bytes())
