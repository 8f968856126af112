"""A history read through the server equals the same history read from its store
directly, on every SQL dialect: the PostgreSQL listing hands the database's JSON text
over unparsed (``wire_rows``), so its values must come out exactly as the store's own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from praisondb import PraisonDB
from tests.conftest import private_url
from tests.server.serving import serve

CONTENTS: list[Any] = [
    "plain text",
    "",
    "line\u2028separator \u0085 and \x00 nul",
    [{"type": "text", "values": ["a", 1, 1.0, -0.0, 1e-300, 2**63 - 1, None, True]}],
    [{"nested": {"deep": [{"k": "v"}]}, "emoji": "\U0001f600", "quote": '"\\'}, {}],
    [{"big": 123456789012345678, "float": 0.1 + 0.2, "exp": 1.5e300, "e16": 1e16}],
    [{"nul": "x\x00y", "mark": "\ue000\ue0000", "escaped": "\\u0000 \\\x00"}],
    "text with \x00 and \ue000 and \ue0000",
]
METADATA: list[dict[str, Any]] = [
    {},
    {"tool": "search", "score": 0.30000000000000004, "n": -7},
    {"unicode": "caf\u00e9 \u4e2d\u6587", "list": [1, [2, [3]]], "null": None},
    {"nul": "a\x00b", "mark": "\ue000", "both": "\ue0000\x00\ue0001", "\x00key": "\\u0000"},
]


@pytest.fixture(params=["sqlite", "postgres", "mysql"])
def store_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    yield from private_url(request.param, tmp_path_factory)


def test_a_served_history_equals_the_stored_one(store_url: str, tmp_path: Path) -> None:
    with PraisonDB(store_url, auto_migrate=True) as direct, serve(store_url, tmp_path) as server:
        direct.sessions.create("rows")
        for i, content in enumerate(CONTENTS * 3):
            direct.messages.append(
                "rows", "tool" if i % 2 else "user", content, metadata=METADATA[i % len(METADATA)]
            )
        with PraisonDB(server.client_url) as remote:
            stored = direct.messages.list("rows")
            served = remote.messages.list("rows")
            assert served == stored
            assert [type(m.content) for m in served] == [type(m.content) for m in stored]
            assert remote.messages.list("rows", after_seq=5, limit=4) == stored[5:9]
            assert remote.messages.list("rows", before_seq=4) == stored[:3]
            assert remote.messages.list("missing") == []
