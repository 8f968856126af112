"""What one call through the async face's bridge costs (tools/bench_async.py --profile).

Prints µs per call, one call at a time and with 200 tasks in flight, for:

- an empty core call through each bridge (``GreenletBridge``, ``ThreadBridge``) and
  through a bare ``greenlet_spawn`` (no task, no shield: what the bridge adds on top);
- one await handed from a greenlet to the loop (``await_only``), and a native driver call
  through ``Awaiting`` against the same call awaited directly (redis.asyncio PING);
- an append on ``memory://`` (no I/O: all of it is core + bridge), on SQLite and Redis, on the
  sync face and on the async face (whatever bridge the URL gets today);

then cProfile's top functions (by own time) for async-face appends on ``memory://``, per
call. Set PRAISONDB_BENCH_REDIS_URL for another Redis (default redis://127.0.0.1:6379/0).
"""

from __future__ import annotations

import asyncio
import cProfile
import functools
import io
import os
import pstats
import tempfile
import time
from collections.abc import Awaitable, Callable

from bench import TEXT, redis_url
from bench_async_raw import POOL
from sqlalchemy.util.concurrency import await_only, greenlet_spawn

from praisondb import PraisonDB
from praisondb.aio import AsyncPraisonDB
from praisondb.aio.awaiting import Awaiting
from praisondb.aio.bridge import GreenletBridge, ThreadBridge

N = 20_000
TASKS = 200


def noop() -> None:
    return None


def one_await() -> None:
    await_only(asyncio.sleep(0))


async def serial_us(call: Callable[[], Awaitable[object]], n: int = N) -> float:
    for _ in range(100):  # warm up
        await call()
    started = time.perf_counter()
    for _ in range(n):
        await call()
    return (time.perf_counter() - started) / n * 1e6


async def concurrent_us(call: Callable[[], Awaitable[object]], n: int = N) -> float:
    """Wall time per call with ``TASKS`` tasks calling at once (the loop's cost per call)."""

    async def worker(count: int) -> None:
        for _ in range(count):
            await call()

    started = time.perf_counter()
    await asyncio.gather(*(worker(n // TASKS) for _ in range(TASKS)))
    return (time.perf_counter() - started) / (n // TASKS * TASKS) * 1e6


def sync_us(call: Callable[[], object], n: int = N) -> float:
    for _ in range(100):
        call()
    started = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - started) / n * 1e6


async def bridges() -> list[tuple[str, float, float]]:
    rows: list[tuple[str, float, float]] = []
    for name, bridge in (("GreenletBridge", GreenletBridge()), ("ThreadBridge", ThreadBridge())):
        call = functools.partial(bridge.run, noop)
        rows.append((f"empty call, {name}.run", await serial_us(call), await concurrent_us(call)))
        await bridge.stop()
        await bridge.finish(noop)
    rows.append(
        (
            "empty call, greenlet_spawn in its own task",
            await serial_us(lambda: asyncio.ensure_future(greenlet_spawn(noop))),
            await concurrent_us(lambda: asyncio.ensure_future(greenlet_spawn(noop))),
        )
    )
    rows.append(
        (
            "empty call, bare greenlet_spawn",
            await serial_us(lambda: greenlet_spawn(noop)),
            await concurrent_us(lambda: greenlet_spawn(noop)),
        )
    )
    rows.append(
        (
            "asyncio.sleep(0) awaited directly",
            await serial_us(lambda: asyncio.sleep(0)),
            await concurrent_us(lambda: asyncio.sleep(0)),
        )
    )
    rows.append(
        (
            "asyncio.sleep(0) via await_only in greenlet_spawn",
            await serial_us(lambda: greenlet_spawn(one_await)),
            await concurrent_us(lambda: greenlet_spawn(one_await)),
        )
    )
    return rows


async def driver_calls() -> list[tuple[str, float, float]]:
    try:
        import redis.asyncio as aioredis
    except ImportError:  # pragma: no cover - the redis extra is not installed
        return []
    url = os.environ.get("PRAISONDB_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    client = aioredis.Redis(
        connection_pool=aioredis.BlockingConnectionPool.from_url(url, max_connections=POOL)
    )
    wrapped = Awaiting(client)
    n = 5_000
    rows = [
        (
            "redis PING awaited directly",
            await serial_us(client.ping, n),
            await concurrent_us(client.ping, n),
        ),
        (
            "redis PING, await_only in greenlet_spawn",
            await serial_us(lambda: greenlet_spawn(lambda: await_only(client.ping())), n),
            await concurrent_us(lambda: greenlet_spawn(lambda: await_only(client.ping())), n),
        ),
        (
            "redis PING through Awaiting in greenlet_spawn",
            await serial_us(lambda: greenlet_spawn(wrapped.ping), n),
            await concurrent_us(lambda: greenlet_spawn(wrapped.ping), n),
        ),
    ]
    await client.aclose()
    return rows


async def appends(url: str, label: str, n: int) -> list[tuple[str, float, float]]:
    sync = PraisonDB(url, auto_migrate=True)
    sid = sync.sessions.create().id
    serial = sync_us(lambda: sync.messages.append(sid, "user", TEXT), n)
    sync.close()
    rows = [(f"append, sync PraisonDB, {label}", serial, float("nan"))]
    async with AsyncPraisonDB(url, auto_migrate=True) as db:
        sid = (await db.sessions.create()).id
        serial = await serial_us(lambda: db.messages.append(sid, "user", TEXT), n)
        sids = [(await db.sessions.create()).id for _ in range(TASKS)]
        turn = iter(range(10**9))
        many = await concurrent_us(
            lambda: db.messages.append(sids[next(turn) % TASKS], "user", TEXT), n
        )
        rows.append(
            (f"append, AsyncPraisonDB ({type(db._bridge).__name__}), {label}", serial, many)
        )
    return rows


async def profiled_appends(n: int) -> str:
    async with AsyncPraisonDB("memory://") as db:
        sid = (await db.sessions.create()).id
        await serial_us(lambda: db.messages.append(sid, "user", TEXT), 100)
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(n):
            await db.messages.append(sid, "user", TEXT)
        profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(18)
    return (
        f"cProfile, {n:,} awaited appends on memory:// (per call = tottime / {n:,}):\n"
        + (out.getvalue().split("\n\n", 1)[-1])
    )


def profile() -> None:
    async def go() -> tuple[list[tuple[str, float, float]], str]:
        rows = await bridges()
        rows += await driver_calls()
        rows += await appends("memory://", "memory://", N)
        with tempfile.TemporaryDirectory(prefix="praisondb-bench-") as tmp:
            rows += await appends(f"sqlite:///{tmp}/p.db", "SQLite (NORMAL)", 3_000)
        with redis_url() as url:
            rows += await appends(url, "Redis", 3_000)
        return rows, await profiled_appends(N)

    rows, stats = asyncio.run(go())
    width = max(len(r[0]) for r in rows)
    print(f"{'µs per call':<{width}}  {'one at a time':>14}  {f'{TASKS} tasks':>10}")
    for name, serial, many in rows:
        print(f"{name:<{width}}  {serial:>14.1f}  {many:>10.1f}")
    print()
    print(stats)


__all__ = ["profile"]
