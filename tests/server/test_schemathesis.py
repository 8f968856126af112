"""Schemathesis fuzzes the secured server against its committed OpenAPI document
(docs/openapi.json, kept equal to the app by the drift test): every operation with
generated inputs, then stateful runs that follow the document's links. Every call carries
an API key (the auth matrix tests what happens without one); no input may cause a 5xx or
an answer the document does not describe, and every input the document calls valid must
be accepted (all checks, on every operation: the document states the app's own rules,
praisondb/server/openapi_types.py). Examples are bounded to keep it under a minute.

The one rule JSON Schema cannot state, that a PUT body's id equals the path's, is marked
in the document (``x-praisondb-body-id``) and applied to generated cases by a hook.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from praisondb import PraisonDB
from praisondb.server.app import create_app
from praisondb.server.auth import Authenticator
from praisondb.server.keys import KeyStore
from praisondb.server.openapi import BODY_ID, HANDED_OUT
from tests.server.secured import TOKEN_SECRET, echo

DOCUMENT = Path(
    os.environ.get("PRAISONDB_OPENAPI", Path(__file__).resolve().parents[2] / "docs/openapi.json")
)
BOUNDED = settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("fuzz")
    db = PraisonDB(f"sqlite:///{tmp}/fuzz.db", auto_migrate=True)
    key = KeyStore(db).create("fuzz", tenant="acme")
    auth = Authenticator(db, token_secret=TOKEN_SECRET, cache_seconds=60.0)
    if not DOCUMENT.exists():
        pytest.fail(f"{DOCUMENT} is missing: the server writes it from the app (openapi.py)")
    api = schemathesis.openapi.from_path(DOCUMENT)
    api.hook("map_case")(_as_the_app_requires)
    # Valid input may still meet the server's state: 404, 409 and (for If-Match) 412.
    accepted = api.config.checks.positive_data_acceptance
    accepted.expected_statuses = [*accepted.expected_statuses, "412"]
    api.app = create_app(db, auth=auth, agents={"echo": echo})
    yield api, {"Authorization": f"Bearer {key}"}
    db.close()


def test_every_operation_answers_as_documented(served: tuple[Any, dict[str, str]]) -> None:
    api, headers = served
    checked = []
    for found in api.get_all_operations():
        operation = found.ok()

        @given(case=operation.as_strategy())
        @BOUNDED
        def answers(case: Any) -> None:
            case.call_and_validate(headers=headers)

        answers()
        checked.append(operation.label)
    assert "POST /agents/{name}/sessions/{id}/chat" in checked, checked


def _as_the_app_requires(context: Any, case: Any) -> Any:
    """``case`` with the rules the document marks but JSON Schema cannot state: the body's
    id is the path parameter BODY_ID names (schemathesis holds it percent-encoded), and a
    HANDED_OUT parameter (a cursor) is left out, as no client can make one up."""
    raw = case.operation.definition.raw
    name = raw.get(BODY_ID)
    if name is not None and isinstance(case.body, dict):
        case.body = {**case.body, "id": unquote(case.path_parameters[name])}
    for parameter in raw.get("parameters", ()):
        if HANDED_OUT in parameter and case.query:
            case.query.pop(parameter["name"], None)
    return case


def _fresh_app() -> tuple[Any, PraisonDB, dict[str, str]]:
    """An app over an empty in-memory store with one key: each stateful run starts from
    the same state, so replaying a run (shrinking) sees the same answers."""
    db = PraisonDB("memory://")
    key = KeyStore(db).create("fuzz", tenant="acme")
    auth = Authenticator(db, token_secret=TOKEN_SECRET, cache_seconds=60.0)
    return create_app(db, auth=auth, agents={"echo": echo}), db, {"Authorization": f"Bearer {key}"}


def test_stateful_runs_follow_the_links(served: tuple[Any, dict[str, str]]) -> None:
    api = served[0]
    machine = api.as_state_machine()

    class Authorised(machine):  # type: ignore[misc, valid-type]
        def setup(self) -> None:
            api.app, self.db, self.headers = _fresh_app()
            super().setup()

        def teardown(self) -> None:
            super().teardown()
            self.db.close()

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": self.headers}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            case.validate_response(response, transport_kwargs=kwargs or None)

    Authorised.run(
        settings=settings(
            max_examples=15,
            stateful_step_count=6,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
    )
