"""A pymongo too new for the MongoDB server (4.14+ refuse MongoDB 4.0 and 4.2) is a
ConfigError naming both versions and the two ways out, on both faces, not pymongo's own
ConfigurationError. The test makes the installed pymongo demand MongoDB 4.4, as 4.14+
do, against the test server (4.0 here)."""

from __future__ import annotations

import uuid

import pytest

from praisondb import ConfigError, PraisonDB
from praisondb.aio import AsyncPraisonDB
from tests.backends import env_url
from tests.conftest import require_module

pymongo = require_module("pymongo")
common = require_module("pymongo.common")

SHARED = env_url("mongodb", "mongodb://127.0.0.1:27017/?replicaSet=rs0")


@pytest.fixture
def demanding_pymongo(monkeypatch: pytest.MonkeyPatch) -> str:
    """A URL of the test server, with pymongo asking for a wire version above the server's."""
    with pymongo.MongoClient(SHARED, serverSelectionTimeoutMS=5000) as client:
        wire = client.admin.command("isMaster")["maxWireVersion"]
    monkeypatch.setattr(common, "MIN_SUPPORTED_WIRE_VERSION", wire + 1)
    monkeypatch.setattr(common, "MIN_SUPPORTED_SERVER_VERSION", "9.9")
    location, _, query = SHARED.partition("?")
    database = f"pdbt_wire_{uuid.uuid4().hex[:8]}"
    return f"{location.rstrip('/')}/{database}?{query}&serverSelectionTimeoutMS=2000"


def _check(error: ConfigError) -> None:
    text = str(error)
    assert "wire version" in text and "needs MongoDB 9.9 or newer" in text
    assert f"This pymongo ({pymongo.__version__})" in text
    assert "pip install 'pymongo>=4.6,<4.14'" in text


def test_a_server_too_old_for_pymongo_says_what_to_do(demanding_pymongo: str) -> None:
    with PraisonDB(demanding_pymongo) as db, pytest.raises(ConfigError) as caught:
        db.sessions.create("s")
    _check(caught.value)


def test_the_async_face_says_the_same(demanding_pymongo: str) -> None:
    import asyncio

    async def main() -> None:
        async with AsyncPraisonDB(demanding_pymongo) as db:
            await db.sessions.create("s")

    with pytest.raises(ConfigError) as caught:
        asyncio.run(main())
    _check(caught.value)
