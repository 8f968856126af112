"""State: scopes, versions, compare-and-set, TTL, atomic incr, listing."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from praisondb import Conflict, PraisonDB, ValidationError
from praisondb.stores.base import Capability
from tests.backends import TestBackend
from tests.conformance.conftest import spawn_worker
from tests.conftest import FakeClock

VALUES = [
    "text with NUL \x00 and emoji 🚀",
    {"nested": {"a.b": [1, 2.5, None, True], "$k": "v", "": {}}},
    [1, "two", [3], {"four": 4}],
    12345678901234,
    -0.5,
    True,
    None,
    "",
]


@pytest.mark.parametrize(
    "value", VALUES, ids=[type(v).__name__ + str(i) for i, v in enumerate(VALUES)]
)
def test_values_round_trip(db: PraisonDB, uid: str, value: object) -> None:
    entry = db.state.set(uid, value, scope=f"user:{uid}")
    assert entry.version == 1
    got = db.state.get_entry(uid, scope=f"user:{uid}")
    assert got is not None and got.value == value and got.version == 1
    assert type(got.value) is type(value)


def test_scopes_are_isolated_and_versions_grow(db: PraisonDB, uid: str) -> None:
    db.state.set(uid, "app", scope="app")
    db.state.set(uid, "user", scope=f"user:{uid}")
    db.state.set(uid, "session", scope=f"session:{uid}")
    assert db.state.get(uid) == "app"
    assert db.state.get(uid, scope=f"user:{uid}") == "user"
    assert db.state.get(uid, scope=f"session:{uid}") == "session"
    assert db.state.get(uid, scope=f"user:{uid}-other", default="dflt") == "dflt"
    assert db.state.set(uid, "app2").version == 2
    assert db.state.set(uid, "app3").version == 3
    assert db.state.delete(uid) is True
    assert db.state.delete(uid) is False
    assert db.state.get(uid) is None
    assert db.state.set(uid, "fresh").version == 1


def test_compare_and_set(db: PraisonDB, uid: str) -> None:
    scope = f"user:{uid}"
    first = db.state.compare_and_set("k", {"n": 1}, 0, scope=scope)
    assert first.version == 1
    with pytest.raises(Conflict):
        db.state.compare_and_set("k", {"n": 2}, 0, scope=scope)  # must-not-exist, but exists
    with pytest.raises(Conflict):
        db.state.compare_and_set("k", {"n": 2}, 5, scope=scope)
    second = db.state.compare_and_set("k", {"n": 2}, 1, scope=scope)
    assert second.version == 2 and db.state.get("k", scope=scope) == {"n": 2}
    with pytest.raises(Conflict):
        db.state.delete("k", scope=scope, expected_version=1)
    assert db.state.delete("k", scope=scope, expected_version=2) is True


def test_compare_and_set_has_exactly_one_winner(db: PraisonDB, uid: str) -> None:
    scope = f"user:{uid}"
    db.state.set("counter", 0, scope=scope)
    wins: list[int] = []
    lock = threading.Lock()

    def contender(n: int) -> None:
        try:
            db.state.compare_and_set("counter", n, 1, scope=scope)
        except Conflict:
            return
        with lock:
            wins.append(n)

    threads = [threading.Thread(target=contender, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    entry = db.state.get_entry("counter", scope=scope)
    assert entry is not None and entry.version == 2 and entry.value == wins[0]


def test_ttl_expiry(db: PraisonDB, uid: str, clock: FakeClock) -> None:
    scope = f"session:{uid}"
    # TTLs long enough that a slow machine's set-then-get stays inside them; the clock
    # fixture moves time past them
    db.state.set("short", "gone soon", scope=scope, ttl=5)
    db.state.set("long", "stays", scope=scope, ttl=3600)
    db.state.set("forever", "stays", scope=scope)
    assert db.state.get("short", scope=scope) == "gone soon"
    entry = db.state.get_entry("long", scope=scope)
    assert entry is not None and entry.expires_at is not None
    clock.advance(6)
    assert db.state.get("short", scope=scope) is None
    assert sorted(db.state.items(scope)) == ["forever", "long"]
    # an expired key counts as absent for compare-and-set, and starts again at version 1
    assert db.state.compare_and_set("short", "again", 0, scope=scope).version == 1
    with pytest.raises(ValidationError):
        db.state.set("bad", 1, scope=scope, ttl=0)


def test_incr(db: PraisonDB, uid: str) -> None:
    scope = f"user:{uid}"
    assert db.state.incr("hits", scope=scope) == 1
    assert db.state.incr("hits", 41, scope=scope) == 42
    assert db.state.incr("hits", -2, scope=scope) == 40
    assert db.state.get("hits", scope=scope) == 40
    db.state.set("word", "text", scope=scope)
    with pytest.raises(ValidationError):
        db.state.incr("word", scope=scope)


def test_incr_from_many_threads_is_exact(db: PraisonDB, uid: str) -> None:
    scope = f"user:{uid}"

    def bump() -> None:
        for _ in range(50):
            db.state.incr("n", scope=scope)

    threads = [threading.Thread(target=bump) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert db.state.get("n", scope=scope) == 400


@pytest.mark.usefixtures("multi_process")
def test_incr_from_many_processes_is_exact(
    db: PraisonDB, backend_url: str, uid: str, face: str
) -> None:
    scope = f"user:{uid}"
    workers = [spawn_worker("incr", backend_url, scope, "n", "100", face=face) for _ in range(4)]
    for proc in workers:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    assert db.state.get("n", scope=scope) == 400


def test_list_by_scope_and_prefix(db: PraisonDB, uid: str) -> None:
    scope = f"user:{uid}"
    for key in ["pref.theme", "pref.lang", "pref.tz", "other", "pref"]:
        db.state.set(key, key.upper(), scope=scope)
    db.state.set("pref.elsewhere", 1, scope=f"user:{uid}-2")
    assert [e.key for e in db.state.list(scope)] == [
        "other",
        "pref",
        "pref.lang",
        "pref.theme",
        "pref.tz",
    ]
    assert [e.key for e in db.state.list(scope, "pref.")] == ["pref.lang", "pref.theme", "pref.tz"]
    assert [e.key for e in db.state.list(scope, "pref.", limit=2)] == ["pref.lang", "pref.theme"]
    assert db.state.items(scope, "pref.t") == {"pref.theme": "PREF.THEME", "pref.tz": "PREF.TZ"}
    assert db.state.clear(scope) == 5
    assert db.state.list(scope) == []
    assert db.state.get("pref.elsewhere", scope=f"user:{uid}-2") == 1


def test_prefix_with_wildcard_characters_is_literal(db: PraisonDB, uid: str) -> None:
    scope = f"user:{uid}"
    for key in ["a%b", "a_b", "axb", "a*b", "a[b]", "a\\b"]:
        db.state.set(key, 1, scope=scope)
    assert [e.key for e in db.state.list(scope, "a%")] == ["a%b"]
    assert [e.key for e in db.state.list(scope, "a_")] == ["a_b"]
    assert [e.key for e in db.state.list(scope, "a*")] == ["a*b"]
    assert [e.key for e in db.state.list(scope, "a[")] == ["a[b]"]
    assert [e.key for e in db.state.list(scope, "a\\")] == ["a\\b"]


def test_temp_scope_is_never_persisted(
    db: PraisonDB,
    backend: TestBackend,
    backend_url: str,
    uid: str,
    open_db: Callable[..., PraisonDB],
) -> None:
    db.state.set(uid, "scratch", scope="temp")
    assert db.state.get(uid, scope="temp") == "scratch"
    assert db.state_store.get_entry("temp", uid) is None
    if Capability.PERSISTENT in backend.capabilities():  # a fresh handle sees the same data
        with open_db(backend_url) as other:
            assert other.state.get(uid, scope="temp") is None


def test_bad_scopes_and_keys_are_rejected(db: PraisonDB) -> None:
    for scope in ["", "User:x", "user:", "has space", "session"]:
        with pytest.raises(ValidationError):
            db.state.set("k", 1, scope=scope)
    with pytest.raises(ValidationError):
        db.state.set("", 1)
    with pytest.raises(ValidationError):
        db.state.set("k", {1, 2})
