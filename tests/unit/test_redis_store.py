"""What is specific to the Redis backend: hash tags, prefixes, session TTL, lost replies.
Appends across processes and a server that stops mid-run are conformance tests
(test_messages.py, test_outages.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from praisondb import Conflict, Message, PraisonDB
from praisondb.stores.redis.store import RedisStore
from tests.conftest import private_url, require_module

redis = require_module("redis")
key_slot = require_module("redis.crc").key_slot


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from private_url("redis", tmp_path_factory)


@pytest.fixture(scope="module")
def db(url: str) -> Iterator[PraisonDB]:
    with PraisonDB(url) as database:
        yield database


def _raw(url: str) -> redis.Redis:
    return redis.Redis.from_url(url.split("?")[0])


def _prefix(url: str) -> str:
    return url.split("prefix=", 1)[1]


def test_every_key_of_a_session_shares_its_hash_tag(db: PraisonDB, url: str, uid: str) -> None:
    db.sessions.create(uid, user_id="u")
    db.messages.extend(uid, [{"role": "user", "content": "x"}] * 3)
    db.runs.start(uid)
    db.checkpoints.create(uid)
    raw = _raw(url)
    keys = list(raw.scan_iter(match=f"{_prefix(url)}s:{{{uid}}}:*"))
    assert {k.decode().rsplit(":", 1)[1] for k in keys} == {"info", "msgs", "ids", "runs", "cps"}
    assert {key_slot(k) for k in keys} == {key_slot(uid.encode())}
    assert db.sessions.delete(uid)
    assert list(raw.scan_iter(match=f"{_prefix(url)}*{uid}*")) == []


def test_prefixes_keep_apps_apart(url: str, uid: str) -> None:
    other = url.rsplit("prefix=", 1)[0] + f"prefix=other-{uid}:"
    with PraisonDB(url) as first, PraisonDB(other) as second:
        first.sessions.create(uid)
        first.state.set("k", 1)
        assert not second.sessions.exists(uid)
        assert second.state.get("k") is None
        second.sessions.create(uid)
        second.messages.append(uid, "user", "only here")
        assert first.messages.count(uid) == 0
        second.sessions.delete(uid)
        second.state.clear("app")


def test_close_releases_the_pool(url: str) -> None:
    with PraisonDB(url) as db:
        db.ping()
        store = db.conversations
        assert isinstance(store, RedisStore)
        assert store._client.connection_pool._created_connections >= 1
    pool = store._client.connection_pool
    sockets = [c._sock for c in [*pool._available_connections, *pool._in_use_connections]]
    assert sockets and all(sock is None for sock in sockets), "close() left sockets open"


def test_session_ttl_is_refreshed_on_write(url: str, uid: str) -> None:
    with PraisonDB(url + "&session_ttl=100") as db:
        db.sessions.create(uid)
        raw = _raw(url)
        info_key = f"{_prefix(url)}s:{{{uid}}}:info"
        raw.expire(info_key, 5)
        db.messages.append(uid, "user", "keeps it alive")
        for part in ("info", "msgs", "ids"):
            assert 90 < raw.ttl(f"{_prefix(url)}s:{{{uid}}}:{part}") <= 100
        raw.delete(info_key)  # what expiry does: the session is gone, and so is it from lists
        assert not db.sessions.exists(uid)
        assert uid not in [s.id for s in db.sessions.list().items]


def test_append_touches_only_the_session_keys(db: PraisonDB, url: str, uid: str) -> None:
    """One EVALSHA per append: counters, ids and messages of this session, nothing global."""
    db.sessions.create(uid)
    raw = _raw(url)
    before = {k for k in raw.scan_iter(match=f"{_prefix(url)}*") if uid.encode() not in k}
    for i in range(3):
        assert db.messages.append(uid, "user", f"m{i}").seq == i + 1
    after = {k for k in raw.scan_iter(match=f"{_prefix(url)}*") if uid.encode() not in k}
    assert after == before
    assert not raw.exists(f"{_prefix(url)}idx:updated:{uid}")
    info = db.sessions.get(uid)
    assert (info.message_count, info.last_seq) == (3, 3)


def test_duplicate_ids_conflict_and_leave_nothing(db: PraisonDB, uid: str) -> None:
    db.sessions.create(uid)
    first = db.messages.append(uid, "user", "one")
    with pytest.raises(Conflict):  # an id already stored, second in the batch
        db.messages.extend(
            uid, [Message(uid, "user", "two"), Message(uid, "user", "x", id=first.id)]
        )
    twin = Message(uid, "user", "twin")
    with pytest.raises(Conflict):  # the same new id twice in one batch
        db.messages.extend(uid, [twin, Message(uid, "user", "again", id=twin.id)])
    assert [(m.seq, m.content) for m in db.messages.list(uid)] == [(1, "one")]
    assert db.messages.append(uid, "user", "two").seq == 2
    info = db.sessions.get(uid)
    assert (info.message_count, info.last_seq) == (2, 2)


def test_a_retried_append_whose_reply_was_lost_is_not_stored_twice(url: str, uid: str) -> None:
    with PraisonDB(url) as db:
        db.sessions.create(uid)
        store = db.conversations
        assert isinstance(store, RedisStore)
        script = store._append
        calls = []

        def lose_first_reply(keys: list[str], args: list[Any]) -> Any:
            result = script(keys, args)
            calls.append(result)
            if len(calls) == 1:
                raise redis.exceptions.ConnectionError("reply lost")
            return result

        store._append = lose_first_reply  # type: ignore[assignment]
        (message,) = db.messages.extend(uid, [Message(uid, "user", "once")])
        assert message.seq == 1 and len(calls) == 2
        assert [m.content for m in db.messages.list(uid)] == ["once"]


def test_state_listing_uses_scan_with_literal_patterns(db: PraisonDB, uid: str) -> None:
    scope = f"user:{uid}*?[x]"
    db.state.set("a*", 1, scope=scope)
    db.state.set("a:b", 2, scope=scope)
    db.state.set("a*", 3, scope=f"user:{uid}")
    assert [(e.scope, e.key) for e in db.state.list(scope)] == [(scope, "a*"), (scope, "a:b")]
    assert [e.key for e in db.state.list(scope, "a*")] == ["a*"]
    assert db.state.clear(scope) == 2
