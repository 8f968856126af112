"""Each agent framework's stock store against praisondb's, same workload, same backend, one run.

Usage: .venv/bin/python tools/bench_frameworks.py [--sections openai-agents]
       [--backends sqlite,postgres,redis] [--turns 2500] [--load 10000]

A section per framework (``SECTIONS``). Per store it prints:

- turns/s: ``add_items`` of one turn (a user and an assistant item), one turn at a
  time, while the session grows from 0 to ``2 * turns`` items;
- growth: the median turn time at ~5,000 items over the median at ~100 (1.00x: an append
  costs the same however long the session is);
- load: ms to read a 10,000-item session whole (median of 5).

Servers come from ``tools/services.sh env`` (``PRAISONDB_TEST_*_URL``); each store gets
a private database, directory or key prefix (tests/backends.py), removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.backends import BACKENDS

WINDOW = 50
TEXT = "The quick brown fox jumps over the lazy dog; agents talk a lot. " * 2


@dataclass
class Row:
    section: str
    backend: str
    store: str
    turns_per_s: float
    growth: float
    load_ms: float


# -- OpenAI Agents SDK ---------------------------------------------------------------------
def turn_items(n: int) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": f"{TEXT} #{n}"},
        {
            "id": f"msg_{n}",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": f"{TEXT} reply {n}", "annotations": []}],
        },
    ]


SessionFactory = Callable[[str], Any]
"""session id -> an SDK Session (opened inside the event loop)."""


@contextlib.asynccontextmanager
async def sdk_stores(backend: str, url: str, tmp: Path) -> AsyncIterator[dict[str, SessionFactory]]:
    """The SDK's own stores for ``backend`` and praisondb's, each a session factory."""
    from praisondb.aio import AsyncPraisonDB
    from praisondb.integrations.openai_agents import PraisonDBSession

    stores: dict[str, SessionFactory] = {}
    closers: list[Callable[[], Any]] = []
    if backend == "sqlite":
        from agents import SQLiteSession
        from agents.extensions.memory import SQLAlchemySession
        from sqlalchemy.ext.asyncio import create_async_engine

        stores["SQLiteSession"] = lambda sid: SQLiteSession(sid, str(tmp / "sdk.db"))
        engine = create_async_engine(f"sqlite+aiosqlite:///{tmp / 'sdk-sqlalchemy.db'}")
        stores["SQLAlchemySession (aiosqlite)"] = lambda sid: SQLAlchemySession(
            sid, engine=engine, create_tables=True
        )
        closers.append(engine.dispose)
    elif backend in ("postgres", "mysql"):
        from agents.extensions.memory import SQLAlchemySession
        from sqlalchemy.ext.asyncio import create_async_engine

        driver = "postgresql+psycopg_async" if backend == "postgres" else "mysql+aiomysql"
        engine = create_async_engine(driver + "://" + url.split("://", 1)[1])
        stores[f"SQLAlchemySession ({driver.split('+')[1]})"] = lambda sid: SQLAlchemySession(
            sid, engine=engine, create_tables=True
        )
        closers.append(engine.dispose)
    elif backend == "redis":
        import redis.asyncio
        from agents.extensions.memory import RedisSession

        base, _, query = url.partition("?")
        client = redis.asyncio.Redis.from_url(base)
        prefix = dict(p.split("=", 1) for p in query.split("&") if "=" in p).get("prefix", "")
        stores["RedisSession"] = lambda sid: RedisSession(
            sid, redis_client=client, key_prefix=prefix + "sdk"
        )
        closers.append(client.aclose)
    db = AsyncPraisonDB(url, auto_migrate=True)
    stores["praisondb PraisonDBSession"] = lambda sid: PraisonDBSession(sid, db)
    closers.append(db.close)
    try:
        yield stores
    finally:
        for close in closers:
            result = close()
            if asyncio.iscoroutine(result):
                await result


async def measure_sdk_store(
    make: SessionFactory, turns: int, load: int
) -> tuple[float, float, float]:
    session = make(f"grow-{uuid.uuid4().hex[:8]}")
    await session.add_items(turn_items(-1))  # schema creation and connection warm-up
    await session.clear_session()
    times: list[float] = []
    started = time.perf_counter()
    for n in range(turns):
        t0 = time.perf_counter()
        await session.add_items(turn_items(n))
        times.append(time.perf_counter() - t0)
    rate = turns / (time.perf_counter() - started)
    early = statistics.median(times[50 - WINDOW // 2 : 50 + WINDOW // 2])  # ~100 items
    late = statistics.median(times[-WINDOW:])  # ~2 * turns items
    big = make(f"load-{uuid.uuid4().hex[:8]}")
    for start in range(0, load, 500):
        await big.add_items([i for n in range(start, start + 250) for i in turn_items(n)])
    samples = []
    for _ in range(5):
        t0 = time.perf_counter()
        items = await big.get_items()
        samples.append(time.perf_counter() - t0)
        assert len(items) == load, (len(items), load)
    for s in (session, big):
        close = getattr(s, "close", None)
        if close is not None and not hasattr(s, "praisondb_session_id"):
            result = close()
            if asyncio.iscoroutine(result):
                await result
    return rate, late / early, statistics.median(samples) * 1000


def openai_agents(backends: list[str], turns: int, load: int) -> Iterator[Row]:
    for backend in backends:
        with tempfile.TemporaryDirectory() as tmp, BACKENDS[backend].factory(Path(tmp)) as url:

            async def run(url: str = url, tmp: str = tmp, backend: str = backend) -> list[Row]:
                rows = []
                async with sdk_stores(backend, url, Path(tmp)) as stores:
                    for name, make in stores.items():
                        rate, growth, load_ms = await measure_sdk_store(make, turns, load)
                        rows.append(Row("openai-agents", backend, name, rate, growth, load_ms))
                        print_row(rows[-1])
                return rows

            yield from asyncio.run(run())


SECTIONS: dict[str, Callable[[list[str], int, int], Iterator[Row]]] = {
    "openai-agents": openai_agents,
}


def print_row(row: Row) -> None:
    print(
        f"| {row.backend} | {row.store} | {row.turns_per_s:,.0f} | {row.growth:.2f}x "
        f"| {row.load_ms:,.1f} ms |",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sections", default=",".join(SECTIONS))
    parser.add_argument("--backends", default="sqlite,postgres,redis")
    parser.add_argument("--turns", type=int, default=2500)
    parser.add_argument("--load", type=int, default=10_000)
    args = parser.parse_args()
    backends = [b for b in args.backends.split(",") if b]
    for section in args.sections.split(","):
        print(f"\n## {section}\n")
        print(
            "| backend | store | turns/s (2 items each) | turn at ~5,000 vs ~100 items | load 10,000 items |"
        )
        print("|---|---|---|---|---|")
        for _ in SECTIONS[section](backends, args.turns, args.load):
            pass


if __name__ == "__main__":
    main()
