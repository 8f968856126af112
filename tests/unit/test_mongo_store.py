"""What is specific to the MongoDB backend: key escaping, the 16 MB limit, the migration
record and its race, on both faces (the async one drives pymongo's AsyncMongoClient).
Appends across processes and a server that stops mid-run are conformance tests
(test_messages.py, test_outages.py); cancellation mid-append is test_async_mongo.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from praisondb import PraisonDB, ValidationError
from praisondb.aio import AsyncPraisonDB
from praisondb.stores.mongo.codec import escape, escape_key, unescape, unescape_key
from praisondb.stores.mongo.core import MIGRATIONS
from praisondb.stores.mongo.store import MongoStore
from tests.backends import mongodb_backend
from tests.conftest import private_url, require_module
from tests.faces import FACES, LoopThread, lens

pymongo = require_module("pymongo")

TRICKY_KEYS = [
    "",
    ".",
    "$",
    "a.b",
    "$set",
    "x$",
    "%",
    "%2E",
    "%25",
    "%%",
    "nul\x00key",
    "sp ace",
    "ü.🚀",
]


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from private_url("mongodb", tmp_path_factory)


@pytest.fixture(scope="module", params=FACES)
def db(url: str, request: pytest.FixtureRequest) -> Iterator[PraisonDB]:
    """The store through each face (the async one seen through the suite's sync lens)."""
    if request.param == "sync":
        with PraisonDB(url) as database:
            yield database
        return
    loop = LoopThread()
    try:
        with lens(AsyncPraisonDB(url), loop) as database:
            yield database
    finally:
        loop.close()


def _raw_db(url: str) -> pymongo.database.Database:  # type: ignore[type-arg]
    client: pymongo.MongoClient = pymongo.MongoClient(url)  # type: ignore[type-arg]
    return client.get_default_database()


@pytest.mark.parametrize("key", TRICKY_KEYS)
def test_key_escaping_is_reversible_and_storable(key: str) -> None:
    escaped = escape_key(key)
    assert unescape_key(escaped) == key
    assert escaped and "." not in escaped and "\x00" not in escaped
    assert not escaped.startswith("$")


def test_escaping_is_unambiguous() -> None:
    escaped = [escape_key(k) for k in TRICKY_KEYS]
    assert len(set(escaped)) == len(TRICKY_KEYS)
    nested = {k: [{k: {k: k}}] for k in TRICKY_KEYS}
    assert unescape(escape(nested)) == nested


def test_metadata_keys_are_escaped_in_the_database(db: PraisonDB, url: str, uid: str) -> None:
    metadata = {k: {k: [k, {k: None}]} for k in TRICKY_KEYS}
    db.sessions.create(uid, metadata=metadata)
    db.messages.append(uid, "user", [{"type": "text", "$weird.key": "v"}], metadata)
    db.sessions.update(uid, metadata={"a.b": 2, "$inc": {"$x": 1}})
    assert db.sessions.get(uid).metadata == {**metadata, "a.b": 2, "$inc": {"$x": 1}}
    (message,) = db.messages.list(uid)
    assert message.metadata == metadata
    assert message.content == [{"type": "text", "$weird.key": "v"}]
    raw = _raw_db(url).sessions.find_one({"_id": uid})
    assert raw is not None and "a%2Eb" in raw["metadata"] and "%24inc" in raw["metadata"]


def test_plain_messages_skip_unescaping_and_others_round_trip(
    db: PraisonDB, url: str, uid: str
) -> None:
    """``p: 1`` marks what loads as stored; escaped keys and Int64 values take the full path,
    and documents written without the mark (older versions) still load exactly."""
    db.sessions.create(uid)
    big = 2**40
    db.messages.append(uid, "user", "plain", {"lang": "en", "n": [1, 2.5, None]})
    db.messages.append(uid, "user", [{"type": "text", "a.b": 1}], {"ok": True})
    db.messages.append(uid, "user", "big number", {"n": big})
    raw = _raw_db(url)
    flags = [d.get("p") for d in raw.messages.find({"sid": uid}).sort("seq", 1)]
    assert flags == [1, None, None]
    legacy = dict(raw.messages.find_one({"sid": uid, "seq": 2}) or {})
    legacy.update(_id=legacy["_id"] + "-legacy", seq=4, id=legacy["id"] + "-legacy")
    raw.messages.insert_one(legacy)  # no "p": as an older version wrote it
    got = db.messages.list(uid)
    assert [m.metadata for m in got] == [
        {"lang": "en", "n": [1, 2.5, None]},
        {"ok": True},
        {"n": big},
        {"ok": True},
    ]
    assert got[1].content == got[3].content == [{"type": "text", "a.b": 1}]
    assert type(got[2].metadata["n"]) is int
    assert [m.seq for m in db.messages.list(uid, last=2)] == [3, 4]


def test_a_message_over_16_mb_is_a_validation_error(db: PraisonDB, uid: str) -> None:
    db.sessions.create(uid)
    db.messages.append(uid, "user", "before")
    with pytest.raises(ValidationError, match="16 MB"):
        db.messages.append(uid, "tool", "x" * (17 * 1024 * 1024))
    info = db.sessions.get(uid)
    assert (info.message_count, info.last_seq) == (1, 1), "nothing of the big append remains"
    assert db.messages.append(uid, "user", "after").seq == 2


def test_timestamps_are_integer_microseconds(db: PraisonDB, url: str, uid: str) -> None:
    db.sessions.create(uid)
    message = db.messages.append(uid, "user", "hi")
    raw = _raw_db(url).messages.find_one({"sid": uid})
    assert raw is not None and isinstance(raw["created_at"], int)
    assert db.messages.list(uid)[0].created_at == message.created_at


def test_migration_record_and_indexes(db: PraisonDB, url: str) -> None:
    db.ping()
    store = db.conversations
    assert isinstance(getattr(store, "_target", store), MongoStore)  # the lens bridges it
    assert store.schema_version() == str(MIGRATIONS[-1][0])
    raw = _raw_db(url)
    assert [d["_id"] for d in raw.praisondb_migrations.find()] == [n for n, _, _ in MIGRATIONS]
    message_indexes = raw.messages.index_information()
    assert any(
        ix.get("unique") and ix["key"] == [("sid", 1), ("seq", 1)]
        for ix in message_indexes.values()
    )
    with PraisonDB(url) as again:  # a second opener finds everything in place
        again.ping()
        assert again.conversations.schema_version() == store.schema_version()
    assert raw.praisondb_migrations.count_documents({}) == len(MIGRATIONS)


def _first_use_at_once(dbs: list[PraisonDB]) -> list[BaseException]:
    """Every store's first operation at the same moment; the errors they raised."""
    start = threading.Barrier(len(dbs))
    errors: list[BaseException] = []

    def first_use(db: PraisonDB) -> None:
        start.wait()
        try:
            assert db.sessions.count() == 0
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=first_use, args=(db,)) for db in dbs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_many_clients_opening_one_new_database_at_once(url: str, tmp_path: Path) -> None:
    """MongoDB 4.0 may fail one of two racing upserts of a new _id with a duplicate key;
    the first open of a new database must not pass that on (it did in 4 of 20 rounds)."""
    for round_ in range(25):
        with mongodb_backend(tmp_path / str(round_)) as fresh:
            dbs = [PraisonDB(fresh, auto_migrate=True) for _ in range(8)]
            try:
                assert _first_use_at_once(dbs) == []
            finally:
                for db in dbs:
                    db.close()
            assert [d["_id"] for d in _raw_db(fresh).praisondb_migrations.find()] == [
                number for number, _, _ in MIGRATIONS
            ]
