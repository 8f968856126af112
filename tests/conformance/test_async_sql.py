"""The SQL store's own mechanics under the async face, on SQLite, PostgreSQL and MariaDB.

The async face's generic guarantees are proven for every backend in test_async_face.py;
these tests look inside the SQL store, with the real async drivers (aiosqlite, psycopg's
AsyncConnection, aiomysql):

- a call cancelled while the driver is mid round trip (a fault proxy slows every reply,
  so the cancel points spread over the whole call) leaves its batch whole or absent, no
  transaction open on the server, every connection back in the pool, and the server
  connections whose round trip was cut discarded rather than reused;
- tasks beyond the pool's size take turns for its connections (SQLAlchemy's asyncio queue
  lets a task that loops take back the connection it just returned, forever);
- aiomysql, which has no read timeout of its own, gives up on a silent server (PyMySQL's
  ``read_timeout``, and ``connect_timeout`` during the handshake) instead of waiting forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import event
from sqlalchemy.engine import make_url

from praisondb import BackendUnavailable
from praisondb.aio import AsyncPraisonDB
from praisondb.stores.sql.store import SQLStore
from tests.backends import TestBackend
from tests.faults.proxy import FaultProxy
from tests.faults.targets import proxied, target

pytestmark = pytest.mark.backends("sqlite", "postgres", "mysql")
T = TypeVar("T")
DEADLINE = 180.0
CANCEL_POINTS = 24
DELAY = 0.02
"""Seconds the proxy holds back each chunk, each way: a round trip takes at least 40 ms."""


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """``main()`` on a fresh loop; a hang fails after DEADLINE."""

    async def bounded() -> T:
        return await asyncio.wait_for(main(), DEADLINE)

    return asyncio.run(bounded())


def open_transactions(backend: str, url: str) -> int:
    """Transactions left open on the test's database by any connection but this one."""
    if backend == "sqlite":
        path = make_url(url).database or ""
        conn = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")  # a write lock still held would refuse this
            conn.execute("ROLLBACK")
            return 0
        except sqlite3.OperationalError:
            return 1
        finally:
            conn.close()
    if backend == "postgres":
        import psycopg

        plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(plain, autocommit=True, connect_timeout=5) as pg:
            row = pg.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()"
            ).fetchone()
        return int(row[0]) if row else 0
    import pymysql

    parsed = make_url(url)
    with (
        pymysql.connect(
            host=parsed.host or "127.0.0.1",
            port=parsed.port or 3306,
            user=parsed.username or "root",
            password=parsed.password or "",
            autocommit=True,
            connect_timeout=5,
        ) as my,
        my.cursor() as cursor,
    ):
        cursor.execute(
            "SELECT COUNT(*) FROM information_schema.innodb_trx t "
            "JOIN information_schema.processlist p ON p.id = t.trx_mysql_thread_id "
            "WHERE p.db = %s AND p.id <> CONNECTION_ID()",
            (parsed.database,),
        )
        (count,) = cursor.fetchone()
    return int(count)


def batch(tag: str, size: int) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": f"{tag}/{n}", "metadata": {"tag": tag}} for n in range(size)
    ]


def test_a_cancel_inside_the_driver_leaves_no_transaction_and_no_broken_connection(
    backend: TestBackend, backend_url: str, uid: str
) -> None:
    server = backend.name != "sqlite"

    async def cancel_at(db: AsyncPraisonDB, k: int, tag: str, size: int) -> str:
        """Start a write and cancel it at point ``k``; how it ended."""
        if size == 1:
            task = asyncio.ensure_future(db.messages.append(uid, "user", f"{tag}/0", {"tag": tag}))
        else:
            task = asyncio.ensure_future(db.messages.extend(uid, batch(tag, size)))
        if server:  # spread over the call's round trips (the proxy slows each one)
            await asyncio.sleep(k * DELAY / 4)  # the cancel point under test, not a wait
        else:  # aiosqlite: a few turns of the loop per call on its thread
            for _ in range(k):
                await asyncio.sleep(0)  # one turn of the loop: the cancel lands k turns in
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return "cancelled"
        return "done"

    async def main() -> tuple[Counter[str], int]:
        async with AsyncPraisonDB(backend_url, auto_migrate=True) as direct:
            await direct.sessions.create(uid)
        with contextlib.ExitStack() as stack:
            proxy = stack.enter_context(FaultProxy(*target(backend_url))) if server else None
            url = proxied(backend.name, backend_url, proxy) if proxy else backend_url
            outcomes: Counter[str] = Counter()
            invalidated: list[BaseException | None] = []
            async with AsyncPraisonDB(url) as db, AsyncPraisonDB(backend_url) as direct:
                await db.ping()
                store = db.sync.conversations
                assert isinstance(store, SQLStore) and store._fast.is_async
                engine = store._engine
                event.listen(engine, "invalidate", lambda _c, _r, exc: invalidated.append(exc))
                if proxy:
                    proxy.delay(DELAY)
                sizes: dict[str, int] = {}
                for k in range(CANCEL_POINTS):
                    tag = f"c{k}"
                    sizes[tag] = 1 if k % 2 else 10
                    outcomes[await cancel_at(db, k, tag, sizes[tag])] += 1
                    # settled: the call has unwound (rolled back, handed its connection back)
                    assert engine.pool.checkedout() == 0, f"point {k}: a connection is still out"
                    assert open_transactions(backend.name, backend_url) == 0, f"point {k}"
                    stored = await direct.messages.list(uid)
                    assert [m.seq for m in stored] == list(range(1, len(stored) + 1))
                    tags = Counter(m.metadata["tag"] for m in stored)
                    assert all(tags[t] in (0, n) for t, n in sizes.items()), (k, tags)
                if proxy:
                    proxy.heal()
                # every pooled connection is usable: more calls at once than the pool holds
                await asyncio.gather(*(db.messages.append(uid, "user", "after") for _ in range(30)))
                final = await direct.messages.list(uid)
            assert [m.seq for m in final] == list(range(1, len(final) + 1))
            assert [m.content for m in final].count("after") == 30
            assert open_transactions(backend.name, backend_url) == 0
        return outcomes, len(invalidated)

    outcomes, invalidated = run(main)
    assert outcomes["cancelled"] > CANCEL_POINTS // 2, outcomes
    if server:  # cancels that cut a round trip discard the connection; SQLite keeps its own
        assert invalidated > 0, "no cancelled call discarded its server connection"


TURNS = 20


def test_tasks_beyond_the_pool_take_turns(backend_url: str, uid: str) -> None:
    """Two connections, twenty tasks, each writing in a loop until every task has written
    once: only a pool that serves its waiters in turn lets the last one in before its
    pool_timeout."""

    async def main() -> None:
        async with AsyncPraisonDB(
            backend_url, auto_migrate=True, pool_size=2, max_overflow=0, pool_timeout=5
        ) as db:
            turns: Counter[int] = Counter()
            everyone = asyncio.Event()

            async def writer(n: int) -> None:
                while not everyone.is_set():
                    await db.state.incr("turns", scope=f"session:{uid}-{n}")
                    turns[n] += 1
                    if len(turns) == TURNS:
                        everyone.set()

            await asyncio.gather(*(writer(n) for n in range(TURNS)))
            for n in range(TURNS):
                assert await db.state.get("turns", scope=f"session:{uid}-{n}") == turns[n]

    run(main)


@pytest.mark.backends("mysql")
def test_aiomysql_gives_up_on_a_silent_server(backend_url: str, uid: str, tmp_path: Path) -> None:
    """A black-holed server: mid-run, the read timeout (1 s) ends each attempt; opening a
    store, the TCP connect succeeds and the handshake's reply never comes, which
    connect_timeout (1 s) ends. Without them aiomysql would wait forever."""

    async def failing(call: Callable[[], Coroutine[Any, Any, Any]]) -> BackendUnavailable:
        started = time.monotonic()
        with pytest.raises(BackendUnavailable) as caught:
            await call()
        assert time.monotonic() - started < 20, "not within the configured timeouts"
        return caught.value

    async def main() -> None:
        async with AsyncPraisonDB(backend_url, auto_migrate=True) as direct:
            await direct.sessions.create(uid)
        with FaultProxy(*target(backend_url)) as proxy:
            url = proxied("mysql", backend_url, proxy)
            assert "read_timeout=1" in url and "connect_timeout=1" in url
            async with AsyncPraisonDB(url) as db:
                await db.ping()
                proxy.blackhole()
                error = await failing(lambda: db.messages.append(uid, "user", "lost"))
                assert "timed out" in str(error), error
                proxy.heal()
                assert (await db.messages.append(uid, "user", "back")).content == "back"
                proxy.blackhole()
                async with AsyncPraisonDB(url) as fresh:
                    await failing(fresh.ping)
                proxy.heal()
            assert proxy.injected["blackhole"] > 0

    run(main)
