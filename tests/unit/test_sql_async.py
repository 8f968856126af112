"""The SQL store under the async face: engine, drivers, in-memory SQLite, missing drivers.

What every backend does under the async face is in the conformance suite (both faces);
this is the SQL store's own machinery: the async engine it builds from the same URL and
options, the greenlet-aware lock of in-memory SQLite's one connection (and that an
interruption never replaces that connection, which would empty the database), and the
errors for a missing async driver, each naming its extra.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy.util.concurrency import greenlet_spawn

from praisondb import ConfigError
from praisondb.aio import AsyncPraisonDB
from praisondb.stores import open_store
from praisondb.stores.sql import engine as sql_engine
from praisondb.stores.sql.async_engine import GreenletLock
from praisondb.stores.sql.store import SQLStore
from praisondb.urls import parse_url

T = TypeVar("T")
DEADLINE = 120.0


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """``main()`` on a fresh loop; a hang fails after DEADLINE."""

    async def bounded() -> T:
        return await asyncio.wait_for(main(), DEADLINE)

    return asyncio.run(bounded())


# -- the engine: same URL, same options, the async driver -------------------------------------


@pytest.mark.parametrize(
    ("url", "sync_driver", "async_driver", "dialect"),
    [
        ("sqlite:///{tmp}/a.db", "sqlite+pysqlite", "sqlite+aiosqlite", "SQLiteDialect_aiosqlite"),
        (
            "postgresql://u:pw@127.0.0.1:1/x",
            "postgresql+psycopg",
            "postgresql+psycopg",
            "PGDialectAsync_psycopg",
        ),
        (
            "postgresql+psycopg://u:pw@127.0.0.1:1/x",
            "postgresql+psycopg",
            "postgresql+psycopg",
            "PGDialectAsync_psycopg",
        ),
        ("mysql://u:pw@127.0.0.1:1/x", "mysql+pymysql", "mysql+aiomysql", "MySQLDialect_aiomysql"),
        (
            "mysql+pymysql://u:pw@127.0.0.1:1/x",
            "mysql+pymysql",
            "mysql+aiomysql",
            "MySQLDialect_aiomysql",
        ),
        (
            "mariadb://u:pw@127.0.0.1:1/x",
            "mariadb+pymysql",
            "mariadb+aiomysql",
            "MariaDBDialect_aiomysql",
        ),
    ],
)
def test_the_async_engine_maps_the_driver_and_keeps_the_options(
    url: str, sync_driver: str, async_driver: str, dialect: str, tmp_path: Path
) -> None:
    query = "pool_size=7&max_overflow=2&pool_timeout=3&connect_timeout=4"
    parsed = parse_url(url.format(tmp=tmp_path) + "?" + query)
    assert sql_engine.driver_url(parsed).drivername == sync_driver
    assert sql_engine.driver_url(parsed, "async").drivername == async_driver
    settings = sql_engine.parse_options(parsed, {})
    sync = sql_engine.create_engine(parsed, settings)
    engine = sql_engine.create_engine(parsed, settings, io="async")  # connects to nothing
    try:
        assert type(engine.dialect).__name__ == dialect and engine.dialect.is_async
        assert type(engine.pool).__name__ == "FairPool"  # see async_engine.py
        for pool in (sync.pool, engine.pool):
            assert (pool.size(), pool.timeout()) == (7, 3)  # type: ignore[attr-defined]
            assert pool._pool.use_lifo  # type: ignore[attr-defined]
        assert engine.url.query.get("charset") == sync.url.query.get("charset")
    finally:
        sync.dispose()
        engine.dispose()


def test_io_async_outside_the_async_face_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"only inside the async face.*AsyncPraisonDB"):
        open_store(f"sqlite:///{tmp_path / 'a.db'}", io="async")
    with pytest.raises(ConfigError, match="io must be one of sync, async"):
        sql_engine.create_engine(
            parse_url("sqlite://"), sql_engine.parse_options(parse_url("sqlite://"), {}), io="aio"
        )
    assert not (tmp_path / "a.db").exists()


def test_the_async_face_opens_sql_stores_on_the_async_driver(tmp_path: Path) -> None:
    async def main() -> tuple[str, bool]:
        async with AsyncPraisonDB(f"sqlite:///{tmp_path / 'a.db'}") as db:
            await db.ping()
            store = db.sync.conversations
            assert isinstance(store, SQLStore)
            return store._engine.dialect.driver, store._fast.is_async

    assert run(main) == ("aiosqlite", True)


TASKS, ROUNDS = 60, 5


def test_a_pool_waiter_that_gives_up_passes_its_connection_on(tmp_path: Path) -> None:
    """The pool hands a returned connection straight to the waiting task; cancelled before
    it resumed, that task gives it back through the pool's own return, which closes an
    overflow connection the pool has no room for (it must not fail with queue.Full)."""
    url = parse_url(f"sqlite:///{tmp_path / 'p.db'}?pool_size=1&max_overflow=1")
    engine = sql_engine.create_engine(url, sql_engine.parse_options(url, {}), io="async")
    pool: Any = engine.pool

    async def main() -> None:
        first = await greenlet_spawn(engine.raw_connection)
        overflow = await greenlet_spawn(engine.raw_connection)
        assert (pool.checkedout(), pool.overflow()) == (2, 1)
        waiting = asyncio.ensure_future(greenlet_spawn(engine.raw_connection))
        await asyncio.sleep(0)  # one turn of the loop: the task now waits for a connection
        for returned in (overflow, first):  # no await in between: the waiter cannot resume
            returned.info[sql_engine.CLEAN] = True  # no reset, so no trip to the loop
            await greenlet_spawn(returned.close)  # the overflow one to the waiter, then queued
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert (pool.checkedout(), pool.checkedin(), pool.overflow()) == (0, 1, 0)
        again = await greenlet_spawn(engine.raw_connection)
        await greenlet_spawn(again.close)
        await greenlet_spawn(engine.dispose)

    run(main)


# -- SQLite files: one writer at a time, queued in the process ----------------------------------


def test_sqlite_writers_of_one_process_never_wait_in_sqlite(tmp_path: Path) -> None:
    """busy_timeout=1: a writer that met another writer's lock inside SQLite would give up
    after 1 ms (and after its retries, fail). Queued on the store's own lock first, the
    tasks of one process never meet it: appends and state writes all land."""

    async def main() -> None:
        async with AsyncPraisonDB(f"sqlite:///{tmp_path / 'w.db'}?busy_timeout=1") as db:
            await asyncio.gather(*(db.sessions.create(f"s{n}") for n in range(TASKS)))

            async def one(n: int) -> None:
                for r in range(ROUNDS):
                    await db.messages.extend(f"s{n}", [{"role": "user", "content": f"{r}"}] * 2)
                    await db.state.incr("total", scope="app")

            await asyncio.gather(*(one(n) for n in range(TASKS)))
            for n in range(TASKS):
                assert await db.messages.count(f"s{n}") == 2 * ROUNDS
            assert await db.state.get("total", scope="app") == TASKS * ROUNDS

    run(main)


# -- in-memory SQLite: one connection, many greenlets -------------------------------------------


def test_in_memory_sqlite_serves_concurrent_tasks_one_call_at_a_time() -> None:
    """Every task's call holds the one connection for its whole transaction: with a
    threading lock, the loop's greenlets (one thread) would interleave inside each other's
    BEGIN ... COMMIT."""

    async def main() -> None:
        async with AsyncPraisonDB("sqlite://") as db:

            async def one(n: int) -> None:
                await db.sessions.create(f"s{n}")
                for r in range(ROUNDS):
                    await db.messages.extend(
                        f"s{n}", [{"role": "user", "content": f"{n}/{r}/{i}"} for i in range(3)]
                    )
                    await db.messages.append("shared", "user", f"{n}/{r}")
                    await db.state.incr("total", scope="all")

            await db.sessions.create("shared")
            await asyncio.gather(*(one(n) for n in range(TASKS)))
            for n in range(TASKS):
                stored = await db.messages.list(f"s{n}")
                assert [m.seq for m in stored] == list(range(1, 3 * ROUNDS + 1))
                assert [m.content for m in stored] == [
                    f"{n}/{r}/{i}" for r in range(ROUNDS) for i in range(3)
                ]
            shared = await db.messages.list("shared")
            assert [m.seq for m in shared] == list(range(1, TASKS * ROUNDS + 1))
            assert await db.state.get("total", scope="all") == TASKS * ROUNDS

    run(main)


def test_a_cancelled_call_on_in_memory_sqlite_keeps_the_database() -> None:
    """Cancel appends after k turns of the loop: some land inside aiosqlite's calls,
    where SQLAlchemy would discard the (only) connection, and the database with it."""

    async def main() -> Counter[str]:
        outcomes: Counter[str] = Counter()
        async with AsyncPraisonDB("sqlite://") as db:
            await db.sessions.create("kept")
            await db.messages.extend("kept", [{"role": "user", "content": "old"}] * 3)
            await db.sessions.create("s")
            sizes: dict[str, int] = {}
            for k in range(40):
                tag = f"c{k}"
                sizes[tag] = 1 + k % 4
                task = asyncio.ensure_future(
                    db.messages.extend(
                        "s",
                        [{"role": "user", "content": tag, "metadata": {"tag": tag}}] * sizes[tag],
                    )
                )
                for _ in range(k % 20):
                    await asyncio.sleep(0)  # one turn of the loop: the cancel lands k turns in
                task.cancel()
                try:
                    await task
                    outcomes["done"] += 1
                except asyncio.CancelledError:
                    outcomes["cancelled"] += 1
                stored = await db.messages.list("s")
                assert [m.seq for m in stored] == list(range(1, len(stored) + 1))
                tags = Counter(m.metadata["tag"] for m in stored)
                assert all(tags[t] in (0, size) for t, size in sizes.items()), tags
                assert [m.content for m in await db.messages.list("kept")] == ["old"] * 3
            assert (await db.messages.append("s", "user", "after")).seq == len(stored) + 1
        return outcomes

    outcomes = run(main)
    assert outcomes["cancelled"] > 0, outcomes


def test_the_greenlet_lock_is_reentrant_and_queues_other_greenlets() -> None:
    order: list[str] = []

    async def main() -> None:
        lock = GreenletLock()
        first_in = asyncio.Event()
        release = asyncio.Event()

        def holder() -> None:
            from sqlalchemy.util.concurrency import await_only

            with lock:
                with lock:  # the same greenlet again: no deadlock
                    order.append("holder in")
                    first_in.set()
                    await_only(release.wait())
                order.append("holder out")

        def waiter() -> None:
            with lock:
                order.append("waiter in")

        held = asyncio.ensure_future(greenlet_spawn(holder))
        await first_in.wait()
        waiting = asyncio.ensure_future(greenlet_spawn(waiter))
        done, _ = await asyncio.wait({waiting}, timeout=0.2)  # the behaviour under test
        assert not done, "the waiter walked in while the lock was held"
        release.set()
        await asyncio.gather(held, waiting)

    run(main)
    assert order == ["holder in", "holder out", "waiter in"]


# -- drivers that are not installed ----------------------------------------------------------------


_SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys

    class Blocker:
        def __init__(self, names):
            self.names = set(names)

        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in self.names:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Blocker(sys.argv[1].split(",")))
    from praisondb.aio import AsyncPraisonDB

    async def main():
        async with AsyncPraisonDB(sys.argv[2]) as db:
            await db.ping()

    try:
        asyncio.run(main())
        print(json.dumps({"type": None, "message": "opened"}))
    except Exception as exc:
        names = [c.__name__ for c in type(exc).__mro__]
        print(json.dumps({"type": names, "message": str(exc)}))
    """
)


@pytest.mark.parametrize(
    ("blocked", "url", "extra"),
    [
        ("aiosqlite", "sqlite:///{tmp}/a.db", "async"),
        ("greenlet", "sqlite:///{tmp}/a.db", "async"),
        ("aiomysql", "mysql://app:hunter2@127.0.0.1:1/test", "mysql"),
        ("aiomysql", "mariadb+pymysql://app:hunter2@127.0.0.1:1/test", "mysql"),
        ("psycopg", "postgresql://app:hunter2@127.0.0.1:1/test", "postgres"),
    ],
)
def test_a_missing_async_driver_names_the_extra(
    blocked: str, url: str, extra: str, tmp_path: Path
) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT, blocked, url.format(tmp=tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["type"] is not None and "ConfigError" in result["type"], result
    message = str(result["message"])
    assert f"pip install 'praisondb[{extra}]'" in message, message
    assert "hunter2" not in message
