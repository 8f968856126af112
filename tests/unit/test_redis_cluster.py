"""The Redis store on Redis Cluster: client choice, single-slot atomic steps, and global
indexes that heal after a crash between steps (on a single Redis and on the cluster)."""

from __future__ import annotations

import contextlib
import dataclasses
import re
import subprocess
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.cluster
from redis.crc import key_slot

from praisondb import BackendUnavailable, ConfigError, Conflict, Message, NotFound, PraisonDB
from praisondb.model import Checkpoint, Run, SessionInfo, Span, StateEntry
from praisondb.stores import open_conversation_store
from praisondb.stores.base import SessionQuery
from praisondb.stores.redis.codec import to_us
from praisondb.stores.redis.store import RedisStore
from tests.conftest import private_url
from tests.faults.targets import FaultCluster, cluster_nodes, proxied, target
from tests.servers import free_port, wait_until_ready
from tests.waiting import eventually

BASE = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from private_url("redis_cluster", tmp_path_factory)


@pytest.fixture(scope="module")
def plain_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from private_url("redis", tmp_path_factory)


@pytest.fixture(params=["redis", "redis_cluster"])
def url(request: pytest.FixtureRequest) -> str:
    name = "plain_url" if request.param == "redis" else "cluster_url"
    value: str = request.getfixturevalue(name)
    return value


@pytest.fixture
def store(url: str) -> Iterator[RedisStore]:
    opened = open_conversation_store(url)
    assert isinstance(opened, RedisStore)
    yield opened
    opened.close()


def _raw(url: str) -> Any:
    base = url.split("?", 1)[0]
    if "cluster=true" in url:
        return redis.cluster.RedisCluster.from_url(base)
    return redis.Redis.from_url(base)


def _prefix(url: str) -> str:
    return url.split("prefix=", 1)[1]


# -- choosing the client ------------------------------------------------------------


def test_cluster_flag_selects_the_cluster_client(cluster_url: str, plain_url: str) -> None:
    with PraisonDB(cluster_url) as db:
        db.ping()
        store = db.conversations
        assert isinstance(store, RedisStore)
        assert isinstance(store._client, redis.cluster.RedisCluster)
    with PraisonDB(plain_url) as db:
        store = db.conversations
        assert isinstance(store, RedisStore)
        assert type(store._client) is redis.Redis


def test_cluster_flag_on_a_plain_server_or_bad_values_are_config_errors(plain_url: str) -> None:
    base = plain_url.split("?", 1)[0]
    with pytest.raises(ConfigError, match="not a Redis Cluster node"):
        open_conversation_store(base + "?cluster=true")
    with pytest.raises(ConfigError, match="true or false"):
        open_conversation_store(base + "?cluster=sometimes")
    with pytest.raises(ConfigError, match="Unix Domain Socket"):
        open_conversation_store("unix:///tmp/none.sock?cluster=true")
    assert not open_conversation_store(base + "?cluster=false").cluster  # type: ignore[attr-defined]


def test_address_remap_sends_every_node_through_its_proxy(cluster_url: str, uid: str) -> None:
    """The keyword reaches RedisCluster: every node the client knows is a proxy, and
    sessions in every node's slots are written and read through them."""
    first = target(cluster_url)
    with FaultCluster(first, cluster_nodes(*first)) as proxies:
        url = proxied("redis_cluster", cluster_url, proxies)
        with PraisonDB(url, address_remap=proxies.remap) as db:
            store = db.conversations
            assert isinstance(store, RedisStore)
            client = store._client
            known = {(n.host, n.port) for n in client.get_nodes()}
            owners: dict[str, str] = {}  # a session on every master
            for i in range(200):
                sid = f"{uid}-{i}"
                owners.setdefault(client.get_node_from_key(store._key(sid, "info")).name, sid)
            ids = sorted(owners.values())
            assert len(ids) == len(client.get_primaries()) > 1
            for sid in ids:
                db.sessions.create(sid)
                db.messages.append(sid, "user", sid)
            assert [db.messages.list(sid)[0].content for sid in ids] == ids
        ports = {p.port for p in proxies.proxies.values()}
        assert known == {("127.0.0.1", port) for port in ports}
        proxies.blackhole()  # and nothing bypasses them: a new client cannot start
        with (
            pytest.raises(BackendUnavailable),
            PraisonDB(url, address_remap=proxies.remap, retry_attempts=1) as blind,
        ):
            blind.ping()


def test_address_remap_mistakes_are_config_errors(cluster_url: str, plain_url: str) -> None:
    def boom(address: tuple[str, int]) -> tuple[str, int]:
        raise KeyError(address)

    with pytest.raises(ConfigError, match="cannot come from the URL"):
        open_conversation_store(cluster_url + "&address_remap=x")
    with pytest.raises(ConfigError, match="must be a callable"):
        open_conversation_store(cluster_url, address_remap="127.0.0.1:7001")
    with pytest.raises(ConfigError, match=r"add \?cluster=true"):
        open_conversation_store(plain_url, address_remap=lambda a: a)
    with pytest.raises(ConfigError, match=r"address_remap failed for .*KeyError"):
        open_conversation_store(cluster_url, address_remap=boom)


# -- every atomic step stays in one slot --------------------------------------------


def _workload(store: RedisStore, uid: str) -> None:
    """Every write and read path of the store, the kinds of keys each one touches."""
    sid, other = f"{uid}-a", f"{uid}-b"
    info = store.create_session(
        dataclasses.replace(_session(sid), user_id=f"u-{uid}", agent="bot", created_at=BASE)
    )
    store.create_session(dataclasses.replace(_session(other), parent_id=sid))
    store.append_messages(sid, [Message(sid, "user", "one")])
    store.append_messages(sid, [Message(sid, "user", f"m{i}") for i in range(3)])
    extra = Message(sid, "assistant", "put", seq=10, created_at=BASE)
    store.put_messages(sid, [extra])
    store.delete_messages(sid, from_seq=2, to_seq=2)
    store.list_messages(sid, last=2)
    store.update_session(sid, title="t", metadata={"k": 1})
    store.put_session(dataclasses.replace(info, user_id=f"u2-{uid}", created_at=BASE))
    store.list_sessions(SessionQuery(user_id=f"u2-{uid}"))
    store.count_sessions(SessionQuery(parent_id=sid))
    run = Run(sid, id=f"{uid}-run")
    store.save_run(run)
    store.save_run(dataclasses.replace(run, session_id=other))  # moves it
    store.get_run(run.id)
    store.list_runs(other)
    cp = Checkpoint(sid, 1, {"s": 1}, id=f"{uid}-cp")
    store.save_checkpoint(cp)
    store.list_checkpoints(sid)
    store.delete_checkpoint(cp.id)
    span = Span(f"t-{uid}", "agent", id=f"{uid}-span", session_id=sid, user_id="u")
    store.save_span(span)
    store.save_span(dataclasses.replace(span, session_id=other, status="ok"))  # moves it
    store.save_span(Span(f"t-{uid}", "tool", id=f"{uid}-free", parent_id=span.id))
    store.list_spans(trace_id=span.trace_id)
    store.list_spans(session_id=other)
    store.get_span(span.id)
    scope = f"user:{uid}"
    store.set_entry(scope, "k", 1)
    store.set_entry(scope, "k", 2, expected_version=1)
    store.incr(scope, "n", 5, expires_at=datetime.now(timezone.utc) + timedelta(hours=1))
    store.delete_entry(scope, "k", expected_version=2)
    store.put_entries(
        [StateEntry(f"session:{uid}-{i}", "x", i, version=3, updated_at=BASE) for i in range(3)]
    )
    store.list_entries(scope)
    store.delete_scope(scope)
    store.delete_session(sid)
    store.delete_session(other)


def _session(session_id: str) -> SessionInfo:
    return SessionInfo(id=session_id)


_ARG = re.compile(r'"((?:[^"\\]|\\.)*)"')
_MULTI_KEY = {"DEL", "UNLINK", "EXISTS", "MGET", "WATCH", "TOUCH"}


def _atomic_steps(commands: list[tuple[str, list[str]]]) -> list[list[str]]:
    """Key lists of each script and each WATCH...EXEC / MULTI...EXEC, per connection."""
    steps: list[list[str]] = []
    open_blocks: dict[str, list[str]] = {}
    for client, args in commands:
        name = args[0].upper()
        if name in {"EVAL", "EVALSHA"}:
            steps.append(args[3 : 3 + int(args[2])])
        elif name in {"WATCH", "MULTI"}:
            open_blocks.setdefault(client, []).extend(args[1:])
        elif name in {"EXEC", "DISCARD", "UNWATCH"}:
            if client in open_blocks:
                steps.append(open_blocks.pop(client))
        elif client in open_blocks and len(args) > 1:
            open_blocks[client].extend(args[1:] if name in _MULTI_KEY else args[1:2])
    return steps


def test_every_script_and_transaction_touches_one_slot(tmp_path: Path) -> None:
    """On a private server, MONITOR records what is sent; each atomic unit's keys must
    hash to one Cluster slot (the cluster suite proves it works, this names the step)."""
    port = free_port()
    subprocess.run(
        ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", str(port),
         "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        check=True, capture_output=True,
    )  # fmt: skip
    raw = redis.Redis(port=port)
    try:
        wait_until_ready(raw.ping, (redis.exceptions.ConnectionError,))
        seen: list[tuple[str, list[str]]] = []
        ready = threading.Event()

        def monitor() -> None:
            with raw.monitor() as mon:
                while True:
                    line = mon.connection.read_response()
                    text = line.decode() if isinstance(line, bytes) else str(line)
                    client = text.split("[", 1)[1].split("]", 1)[0]
                    args = [a.replace('\\"', '"') for a in _ARG.findall(text)]
                    if args[:2] == ["ECHO", "monitor-done"]:
                        return
                    if args[:2] == ["ECHO", "monitor-ready"]:
                        ready.set()  # the monitor sees commands from now on
                    elif ready.is_set():
                        seen.append((client, args))

        thread = threading.Thread(target=monitor)
        thread.start()
        eventually(lambda: raw.echo("monitor-ready") and ready.is_set(), 10, "MONITOR")
        store = open_conversation_store(f"redis://127.0.0.1:{port}/0?prefix=slots:")
        assert isinstance(store, RedisStore)
        _workload(store, "w")
        store.close()
        raw.echo("monitor-done")
        thread.join(10)
        steps = _atomic_steps(seen)
        names = {args[0].upper() for _, args in seen}
        assert {"EVALSHA", "EVAL", "MULTI", "WATCH"} <= names, names
        assert "KEYS" not in names
        assert len(steps) > 20
        for keys in steps:
            assert keys and len({key_slot(k.encode()) for k in keys}) == 1, keys
    finally:
        with contextlib.suppress(redis.exceptions.RedisError):
            raw.shutdown(nosave=True)


def test_workload_runs_on_the_cluster(cluster_url: str, uid: str) -> None:
    """The same paths on a real cluster: a cross-slot step would fail with CROSSSLOT."""
    store = open_conversation_store(cluster_url)
    assert isinstance(store, RedisStore)
    _workload(store, uid)
    assert store.list_entries(f"user:{uid}") == []
    raw = _raw(cluster_url)
    for owned in ("-a", "-b", "-run", "-cp", "-span"):  # the spanless trace stays, as it should
        assert list(raw.scan_iter(match=f"{_prefix(cluster_url)}*{uid}{owned}*")) == []
    assert [s.id for s in store.list_spans(trace_id=f"t-{uid}")] == [f"{uid}-free"]
    store.close()


# -- crashes between steps heal ------------------------------------------------------


def test_index_entries_without_a_session_are_dropped_by_listing(
    store: RedisStore, url: str, uid: str
) -> None:
    """A crash after the index step of a create (or before the cleanup of a delete)."""
    user = f"u-{uid}"
    store.create_session(dataclasses.replace(_session(f"{uid}-live"), user_id=user))
    raw = _raw(url)
    for key in (f"idx:user:{user}", "idx:created"):
        raw.zadd(_prefix(url) + key, {f"{uid}-ghost": 1})
    query = SessionQuery(user_id=user)
    assert [s.id for s in store.list_sessions(query).items] == [f"{uid}-live"]
    assert raw.zscore(_prefix(url) + f"idx:user:{user}", f"{uid}-ghost") is None
    assert store.count_sessions(query) == 1
    assert store.count_sessions(SessionQuery()) >= 1
    assert raw.zscore(_prefix(url) + "idx:created", f"{uid}-ghost") is None


def test_an_entry_with_a_wrong_score_is_repaired(store: RedisStore, url: str, uid: str) -> None:
    """A put that changed created_at crashed after its index step: listed once, fixed."""
    user = f"u-{uid}"
    info = store.create_session(dataclasses.replace(_session(uid), user_id=user, created_at=BASE))
    raw = _raw(url)
    key = _prefix(url) + f"idx:user:{user}"
    raw.zadd(key, {uid: 5})
    assert [s.id for s in store.list_sessions(SessionQuery(user_id=user)).items] == []
    assert raw.zscore(key, uid) == to_us(info.created_at)
    assert [s.id for s in store.list_sessions(SessionQuery(user_id=user)).items] == [uid]


def test_a_conflicting_create_leaves_the_existing_session_listed(
    store: RedisStore, uid: str
) -> None:
    user = f"u-{uid}"
    store.create_session(dataclasses.replace(_session(uid), user_id=user, created_at=BASE))
    later = dataclasses.replace(_session(uid), user_id=user, created_at=BASE + timedelta(days=1))
    with pytest.raises(Conflict):
        store.create_session(later)
    items = store.list_sessions(SessionQuery(user_id=user)).items
    assert [(s.id, s.created_at) for s in items] == [(uid, BASE)]


def test_put_session_moves_index_entries(store: RedisStore, uid: str) -> None:
    first, second = f"u1-{uid}", f"u2-{uid}"
    info = store.create_session(dataclasses.replace(_session(uid), user_id=first))
    store.put_session(dataclasses.replace(info, user_id=second, agent=f"a-{uid}"))
    assert store.count_sessions(SessionQuery(user_id=first)) == 0
    assert [s.id for s in store.list_sessions(SessionQuery(user_id=second)).items] == [uid]
    assert [s.id for s in store.list_sessions(SessionQuery(agent=f"a-{uid}")).items] == [uid]


def test_a_half_done_move_shows_the_item_once(store: RedisStore, url: str, uid: str) -> None:
    """A run saved under another session crashed after writing its new home only."""
    a, b = f"{uid}-a", f"{uid}-b"
    run = Run(a, id=f"{uid}-run", model="m")
    store.save_run(run)
    moved = dataclasses.replace(run, session_id=b, model="new")
    raw = _raw(url)
    raw.hset(store._key(b, "runs"), run.id, raw.hget(store._key(a, "runs"), run.id))
    assert [r.model for r in store.list_runs(a)] == ["m"]
    assert store.list_runs(b) == []
    assert store.get_run(run.id).session_id == a
    store.save_run(moved)  # finishing the save heals it
    assert store.list_runs(a) == [] and store.list_runs(b) == [moved]


def test_a_delete_that_crashed_before_cleanup(store: RedisStore, url: str, uid: str) -> None:
    """Only the session's own slot was deleted: nothing of it is visible any more."""
    user = f"u-{uid}"
    store.create_session(dataclasses.replace(_session(uid), user_id=user))
    store.save_run(Run(uid, id=f"{uid}-run"))
    store.save_checkpoint(Checkpoint(uid, 0, id=f"{uid}-cp"))
    span = Span(f"t-{uid}", "agent", id=f"{uid}-span", session_id=uid, user_id=user)
    store.save_span(span)
    raw = _raw(url)
    raw.delete(*store._session_keys(uid))  # the first step of delete_session, alone
    assert store.list_sessions(SessionQuery(user_id=user)).items == []
    assert store.count_sessions(SessionQuery(user_id=user)) == 0
    with pytest.raises(NotFound):
        store.get_run(f"{uid}-run")
    with pytest.raises(NotFound):
        store.get_checkpoint(f"{uid}-cp")
    with pytest.raises(NotFound):
        store.get_span(span.id)
    assert store.list_spans(trace_id=span.trace_id) == []
    assert store.list_spans(user_id=user) == []
    assert raw.zscore(_prefix(url) + f"spans:trace:t-{uid}", span.id) is None
    assert not store.delete_session(uid)


def test_session_ttl_expiry_is_not_counted(url: str, uid: str) -> None:
    user = f"u-{uid}"
    store = open_conversation_store(url + "&session_ttl=100")
    assert isinstance(store, RedisStore)
    store.create_session(dataclasses.replace(_session(uid), user_id=user))
    store.create_session(dataclasses.replace(_session(f"{uid}-2"), user_id=user))
    assert store.count_sessions(SessionQuery(user_id=user)) == 2
    _raw(url).delete(store._key(uid, "info"))  # what expiry does
    assert store.count_sessions(SessionQuery(user_id=user)) == 1
    store.close()


def test_listing_pages_through_equal_created_at(store: RedisStore, uid: str) -> None:
    """More sessions share one created_at than a batch holds: none skipped or repeated."""
    user = f"u-{uid}"
    ids = [f"{uid}-{i:03d}" for i in range(450)]
    for session_id in ids:
        store.create_session(
            dataclasses.replace(_session(session_id), user_id=user, created_at=BASE)
        )
    seen: list[str] = []
    cursor = None
    while True:
        page = store.list_sessions(SessionQuery(user_id=user, limit=120, cursor=cursor))
        seen += [s.id for s in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == sorted(ids, reverse=True)
    assert store.count_sessions(SessionQuery(user_id=user)) == 450


def test_state_scope_shares_one_slot(store: RedisStore, url: str, uid: str) -> None:
    scope = f"user:{uid}"
    for key in ("a", "b:c", "{x}", "}y"):
        store.set_entry(scope, key, key)
    raw = _raw(url)
    names = list(raw.scan_iter(match=f"{_prefix(url)}st:*{uid}*"))
    assert len(names) == 4
    assert {key_slot(n) for n in names} == {key_slot(scope.encode())}
    assert [e.key for e in store.list_entries(scope)] == ["a", "b:c", "{x}", "}y"]
    assert store.delete_scope(scope) == 4


def test_ids_starting_with_a_brace_stay_in_one_slot(store: RedisStore, url: str, uid: str) -> None:
    sid = "}" + uid
    store.create_session(_session(sid))
    store.append_messages(sid, [Message(sid, "user", "x")])
    keys = store._session_keys(sid)
    assert len({key_slot(k.encode()) for k in keys}) == 1
    assert [m.content for m in store.list_messages(sid)] == ["x"]
    assert store.delete_session(sid)
