"""MongoDB URLs: a URL without a database path uses ``praisondb``; the URL's
``serverSelectionTimeoutMS`` (or the ``timeout`` option) bounds the whole wait for an
unreachable server, retries included, and the error says how long and how often. On
both faces: the async one drives pymongo's AsyncMongoClient, built from the same URL."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy.util.concurrency import greenlet_spawn

from praisondb import BackendUnavailable, ConfigError, PraisonDB
from praisondb.aio import AsyncPraisonDB
from praisondb.aio.awaiting import Awaiting
from praisondb.stores import open_store
from praisondb.stores.mongo.store import MongoStore
from praisondb.urls import parse_url
from tests.backends import env_url
from tests.conftest import require_all_backends, require_module
from tests.faces import FACES, LoopThread, lens
from tests.servers import free_port

pymongo = require_module("pymongo")

SHARED = env_url("mongodb", "mongodb://127.0.0.1:27017/?replicaSet=rs0")


@pytest.fixture(params=FACES)
def open_face(request: pytest.FixtureRequest) -> Iterator[Callable[[str], PraisonDB]]:
    """``open_face(url)``: a database of the test's face (the async one through the lens)."""
    if request.param == "sync":
        yield PraisonDB
        return
    loop = LoopThread()
    try:
        yield lambda url: lens(AsyncPraisonDB(url), loop)
    finally:
        loop.close()


def _host_and_query() -> tuple[str, str]:
    location, _, query = SHARED.partition("?")
    scheme, _, rest = location.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}", query


@pytest.fixture
def shared_client() -> pymongo.MongoClient[dict[str, object]]:
    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
        SHARED, serverSelectionTimeoutMS=5000
    )
    try:
        client.admin.command("ping")
    except pymongo.errors.PyMongoError as exc:
        if require_all_backends():
            pytest.fail(f"mongodb is unreachable: {exc}")
        pytest.skip(f"mongodb is unreachable: {exc}")
    return client


@pytest.mark.parametrize("slash", ["/", ""])
def test_url_without_a_database_uses_praisondb(
    shared_client: pymongo.MongoClient[dict[str, object]],
    slash: str,
    open_face: Callable[[str], PraisonDB],
) -> None:
    host, query = _host_and_query()
    url = host + slash + (f"?{query}" if query else "")
    sid = f"nodb-{uuid.uuid4().hex}"
    try:
        with open_face(url) as db:
            db.sessions.create(sid)
            db.messages.append(sid, "user", "hello")
            assert [m.content for m in db.messages.list(sid)] == ["hello"]
        assert shared_client["praisondb"].sessions.find_one({"_id": sid}) is not None
    finally:
        with PraisonDB(url) as db:
            db.sessions.delete(sid)
        shared_client.close()


def _unreachable(query: str) -> str:
    return f"mongodb://app:hunter2@127.0.0.1:{free_port()}/x?{query}"


@pytest.mark.parametrize(
    ("query", "budget", "attempts"),
    [
        ("serverSelectionTimeoutMS=1500", 1.5, 3),
        ("serverselectiontimeoutms=2000&retry_attempts=2", 2.0, 2),
        ("timeout=1.5", 1.5, 3),
        ("timeout=1&serverSelectionTimeoutMS=30000", 1.0, 2),
    ],
)
def test_unreachable_server_waits_no_longer_than_configured(
    caplog: pytest.LogCaptureFixture,
    query: str,
    budget: float,
    attempts: int,
    open_face: Callable[[str], PraisonDB],
) -> None:
    if "retry_attempts" not in query:
        query += f"&retry_attempts={attempts}"
    caplog.set_level(logging.WARNING, logger="praisondb")
    started = time.monotonic()
    with open_face(_unreachable(query)) as db, pytest.raises(BackendUnavailable) as caught:
        db.ping()
    elapsed = time.monotonic() - started
    assert elapsed < budget + 0.4, f"waited {elapsed:.1f} s for a budget of {budget} s"
    error = caught.value
    message = str(error)
    assert error.attempts == attempts
    assert error.waited is not None and error.waited <= elapsed
    assert f"after {attempts} attempts over {error.waited:.1f} s" in message
    assert message.endswith(" s"), message  # whole: nothing cut after the summary
    assert "Topology Description" not in message and "hunter2" not in message
    # the sync driver's socket says "Connection refused", asyncio's "Connect call failed"
    assert "Connection refused" in message or "[Errno 111] Connect call failed" in message
    retries = [r for r in caplog.records if "retry" in r.getMessage()]
    assert len(retries) == attempts - 1
    assert all(r.levelno == logging.WARNING and "hunter2" not in r.getMessage() for r in retries)


def test_an_unknown_io_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="io must be 'sync' or 'async'") as caught:
        MongoStore(parse_url(_unreachable("timeout=1")), io="threads")  # type: ignore[arg-type]
    assert "hunter2" not in str(caught.value) and "bad MongoDB URL" not in str(caught.value)


@pytest.mark.parametrize("io", ["sync", "async"])
def test_the_url_timeouts_reach_the_driver(io: str) -> None:
    """connectTimeoutMS and socketTimeoutMS in the URL are not overridden by defaults."""
    url = _unreachable("connectTimeoutMS=1234&socketTimeoutMS=4321&timeout=3")
    store = open_store(url, io=io)
    try:
        options = store._client.options
        assert options.pool_options.connect_timeout == pytest.approx(1.234)
        assert options.pool_options.socket_timeout == pytest.approx(4.321)
        assert options.server_selection_timeout < 3  # one attempt's share of the budget
        assert isinstance(store._client, Awaiting) is (io == "async")
    finally:
        if io == "sync":
            store.close()
        else:  # the async client closes on a loop, through the greenlet bridge
            asyncio.run(greenlet_spawn(store.close))
