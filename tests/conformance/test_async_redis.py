"""The Redis store under the async face, on ``redis.asyncio``: what is particular to it.

The generic async guarantees (concurrent sessions, cancelled appends and lock waiters,
closing with calls in flight) are tests/conformance/test_async_face.py's. Here: a
cancelled command's connection is dropped rather than handed back with a reply still to
come, hundreds of tasks wait for a small pool instead of failing, the asyncio
RedisCluster (which connects lazily) opens like the sync one, and the explicit
WATCH/MULTI/EXEC loop runs again after a conflict on both clients.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from praisondb import BackendUnavailable, ConfigError, PraisonDB
from praisondb.aio import AsyncPraisonDB
from praisondb.stores.redis.store import RedisStore
from tests.backends import TestBackend
from tests.conftest import require_module
from tests.faults.targets import faulty, proxied, store_options
from tests.servers import free_port
from tests.waiting import eventually

redis = require_module("redis")
redis_cluster = require_module("redis.cluster")

pytestmark = pytest.mark.backends("redis", "redis_cluster")


def _with(url: str, query: str) -> str:
    return url + ("&" if "?" in url else "?") + query


def _raw(url: str) -> Any:
    """A sync redis-py client to the test's server (every node, on a cluster)."""
    base = url.split("?", 1)[0]
    if "cluster=true" in url:
        return redis_cluster.RedisCluster.from_url(base)
    return redis.Redis.from_url(base)


def _connections(url: str, name: str) -> dict[str, int]:
    """Connections per server node whose client name is ``name`` (CLIENT LIST)."""
    raw = _raw(url)
    try:
        if "cluster=true" in url:
            nodes = {n.name: n.redis_connection for n in raw.get_primaries()}
        else:
            nodes = {"server": raw}
        return {
            node: sum(1 for c in client.client_list() if c.get("name") == name)
            for node, client in nodes.items()
        }
    finally:
        raw.close()


def _store(db: AsyncPraisonDB) -> RedisStore:
    store = db.sync.conversations
    assert isinstance(store, RedisStore)
    return store


@pytest.fixture
def proxy(backend: TestBackend, backend_url: str) -> Iterator[Any]:
    with faulty(backend.name, backend_url) as armed:
        yield armed


def test_a_cancelled_append_drops_its_connection_with_the_reply_still_to_come(
    backend: TestBackend, backend_url: str, proxy: Any, uid: str
) -> None:
    """One connection in the pool, an append whose request the proxy holds back, the
    caller cancelled meanwhile: redis-py disconnects that connection, so the reply the
    server sends later reaches no one, and the next calls read their own replies. The
    append is one EVALSHA: it lands whole when the held request reaches the server."""
    url = _with(proxied(backend.name, backend_url, proxy), "max_connections=1")

    async def scenario() -> list[tuple[int, Any]]:
        async with AsyncPraisonDB(url, **store_options(proxy)) as db:
            await db.sessions.create(uid)
            await db.messages.append(uid, "user", "before")
            held = proxy.injected["delay"]
            proxy.delay(0.5)  # the injected fault: requests and replies come late
            append = asyncio.ensure_future(db.messages.append(uid, "user", "cancelled"))
            while proxy.injected["delay"] == held:  # the EVALSHA is in the proxy's hands
                await asyncio.sleep(0.005)  # polling interval
            append.cancel()
            with pytest.raises(asyncio.CancelledError):
                await append
            proxy.heal()
            # Each call reads its own reply (a kept connection would hand the first of
            # these the append's reply, an integer where a list belongs).
            assert [m.content for m in await db.messages.list(uid)] in (
                ["before"],
                ["before", "cancelled"],
            )
            while await db.messages.count(uid) < 2:  # the held request reaches the server
                await asyncio.sleep(0.005)  # polling interval
            after = await db.messages.append(uid, "user", "after")
            assert after.seq == 3
            info = await db.sessions.get(uid)
            assert (info.message_count, info.last_seq) == (3, 3)
            return [(m.seq, m.content) for m in await db.messages.list(uid)]

    assert asyncio.run(scenario()) == [(1, "before"), (2, "cancelled"), (3, "after")]


@pytest.mark.parametrize("pool", [4, None])
def test_300_tasks_wait_for_the_pool_instead_of_failing(
    backend_url: str, uid: str, pool: int | None
) -> None:
    """300 tasks, each creating a session and appending 5 messages, through a pool of 4
    connections (per node on a cluster) and through the default pool (50): every call
    succeeds, with exact results, and no node ever saw more connections than the pools."""
    name = f"praisondb-pool-{uuid.uuid4().hex[:12]}"
    query = f"client_name={name}" + ("" if pool is None else f"&max_connections={pool}")
    url = _with(backend_url, query)
    limit = pool or 50
    if "cluster=true" in backend_url:
        # A node's pool for commands, its pool for transactions (stores/redis/aio.py)
        # and the connection the client reads the slot map through.
        limit = 2 * limit + 1
    seen: list[dict[str, int]] = []

    async def one(db: AsyncPraisonDB, sid: str) -> list[int]:
        await db.sessions.create(sid)
        return [(await db.messages.append(sid, "user", f"m{i}")).seq for i in range(5)]

    async def watch(done: asyncio.Event) -> None:
        while not done.is_set():  # sample the connections while the tasks run
            seen.append(await asyncio.to_thread(_connections, backend_url, name))
            await asyncio.sleep(0.01)  # polling interval

    async def scenario() -> None:
        async with AsyncPraisonDB(url) as db:
            await db.ping()
            done = asyncio.Event()
            watcher = asyncio.ensure_future(watch(done))
            sids = [f"{uid}-{i}" for i in range(300)]
            seqs = await asyncio.gather(*(one(db, sid) for sid in sids))
            done.set()
            await watcher
            assert seqs == [[1, 2, 3, 4, 5]] * 300
            counts = await asyncio.gather(*(db.messages.count(sid) for sid in sids))
            assert counts == [5] * 300
            seen.append(_connections(backend_url, name))

    asyncio.run(scenario())
    peak = max(n for sample in seen for n in sample.values())
    assert 1 <= peak <= limit, seen
    eventually(lambda: not any(_connections(backend_url, name).values()), what="close() drops them")


def test_tasks_get_the_pool_in_turn_under_steady_load(backend_url: str, uid: str) -> None:
    """100 tasks appending back to back through 2 connections: a task that hands its
    connection back must not take it again ahead of those waiting (redis-py's blocking
    pool lets it, and the last tasks waited for nearly every append of every other task).
    Served in turn, the tasks move in step: when the first has made its 20 appends, every
    other has made most of its own. Counted in appends, not seconds, so a loaded machine
    changes nothing."""
    url = _with(backend_url, "max_connections=2&timeout=30&retry_attempts=1")
    sids = [f"{uid}-{i}" for i in range(100)]
    progress = dict.fromkeys(sids, 0)
    behind: list[int] = []  # the slowest task's appends each time a task finishes

    async def scenario() -> list[int]:
        async with AsyncPraisonDB(url) as db:
            await asyncio.gather(*(db.sessions.create(sid) for sid in sids))

            async def writer(sid: str) -> int:
                for n in range(20):
                    await db.messages.append(sid, "user", f"m{n}")
                    progress[sid] += 1
                behind.append(min(progress.values()))
                return int(await db.messages.count(sid))

            return list(await asyncio.gather(*(writer(sid) for sid in sids)))

    assert asyncio.run(scenario()) == [20] * 100
    assert behind[0] >= 15, (
        f"when the first task had made its 20 appends, another had made only {behind[0]}: "
        "the pool served some tasks ahead of those waiting"
    )


@pytest.mark.backends("redis")  # a plain server, opened as a cluster
def test_the_async_cluster_client_opens_like_the_sync_one(backend_url: str) -> None:
    """redis.asyncio's RedisCluster reads the slot map on its first command; the store
    makes it read it while opening, so both faces fail alike and at the same point."""
    plain = backend_url.split("?", 1)[0]
    nowhere = f"redis://127.0.0.1:{free_port()}/0?cluster=true&timeout=0.5&retry_attempts=2"

    async def first_call(url: str) -> None:
        async with AsyncPraisonDB(url) as db:
            await db.ping()

    for url, error, text in (
        (_with(plain, "cluster=true"), ConfigError, "not a Redis Cluster node"),
        (nowhere, BackendUnavailable, "connect failed"),
    ):
        with pytest.raises(error, match=text), PraisonDB(url) as db:
            db.ping()
        with pytest.raises(error, match=text):
            asyncio.run(first_call(url))


@pytest.mark.parametrize("io", ["sync", "async"])
def test_a_transaction_runs_again_when_a_watched_key_changes(
    backend_url: str, uid: str, io: str
) -> None:
    """The explicit WATCH/MULTI/EXEC loop (RedisCore._transaction) on both clients: a
    write to a watched key between WATCH and EXEC makes EXEC fail, and the body runs
    again on fresh reads; what it wrote the first time is never applied."""
    raw = _raw(backend_url)
    key = f"{backend_url.split('prefix=', 1)[1]}s:{{{uid}}}:probe"
    runs: list[bytes | None] = []

    def body(pipe: Any) -> bytes | None:
        seen = pipe.get(key)
        runs.append(seen)
        if len(runs) == 1:
            raw.set(key, "from elsewhere")  # changes the watched key before EXEC
        pipe.multi()
        pipe.set(key, f"run {len(runs)}")
        return seen  # type: ignore[no-any-return]

    def transact(store: RedisStore) -> bytes | None:
        return store._transaction("probe", body, key)

    try:
        if io == "sync":
            with PraisonDB(backend_url) as db:
                store = db.conversations
                assert isinstance(store, RedisStore)
                result = transact(store)
        else:

            async def scenario() -> bytes | None:
                async with AsyncPraisonDB(backend_url) as db:
                    found: bytes | None = await db.run_sync(
                        lambda core: transact(core.conversations)
                    )
                    assert _store(db)._io == "async"
                    return found

            result = asyncio.run(scenario())
        assert runs == [None, b"from elsewhere"] and result == b"from elsewhere"
        assert raw.get(key) == b"run 2"
    finally:
        raw.delete(key)
        raw.close()


@pytest.mark.backends("redis_cluster")
def test_cluster_transactions_run_on_the_loop_without_threads(
    backend_url: str, uid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """redis-py's asyncio ClusterPipeline runs each command of a transaction through a
    thread of its own while the loop waits; the store's session writes (WATCH/MULTI/EXEC
    on the slot's primary, stores/redis/aio.py) start no thread at all."""
    started: list[str] = []
    start = threading.Thread.start

    def spy(thread: threading.Thread) -> None:
        started.append(thread.name)
        start(thread)

    async def scenario() -> None:
        async with AsyncPraisonDB(backend_url) as db:
            await db.sessions.create(f"{uid}-warm")  # connections to every node, first
            await db.sessions.delete(f"{uid}-warm")
            monkeypatch.setattr(threading.Thread, "start", spy)
            for i in range(10):
                await db.sessions.create(f"{uid}-{i}", user_id="u")
                await db.sessions.update(f"{uid}-{i}", title="t")
                await db.sessions.delete(f"{uid}-{i}")
            monkeypatch.undo()

    asyncio.run(scenario())
    assert started == []


@pytest.mark.backends("redis_cluster")
def test_a_transaction_sent_to_a_node_that_lost_the_slot_follows_it(
    backend_url: str, uid: str, caplog: pytest.LogCaptureFixture
) -> None:
    """As after a resharding the client has not noticed yet: its slot map names another
    primary. That node answers MOVED; the slot map is read again and the retry runs the
    transaction on the slot's owner."""

    async def scenario() -> None:
        async with AsyncPraisonDB(backend_url) as db:
            await db.sessions.create(uid)
            store = _store(db)
            cluster = store._client.unwrapped
            slot = cluster.keyslot(store._key(uid, "info"))
            owner = cluster.nodes_manager.slots_cache[slot][0]
            other = next(n for n in cluster.get_primaries() if n.name != owner.name)
            cluster.nodes_manager.slots_cache[slot] = [other]
            # straight to the store: the repository would read first (and fix the map)
            updated = await db.run_sync(
                lambda core: core.conversations.update_session(uid, title="moved")
            )
            assert updated.title == "moved"
            assert cluster.nodes_manager.slots_cache[slot][0].name == owner.name
            assert (await db.sessions.get(uid)).title == "moved"

    with caplog.at_level("WARNING", logger="praisondb.retry"):
        asyncio.run(scenario())
    assert "failed (TryAgainError); retry 1" in caplog.text  # the MOVED, retried
