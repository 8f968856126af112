"""The peers of tools/bench_async.py --peers: the OpenAI Agents SDK's async sessions
(``agents.extensions.memory``) on the same workload as AsyncPraisonDB.

They are bench-only (``bash tools/bench_peers_env.sh`` makes ``.venv-bench`` with them),
never praisondb dependencies, so nothing here imports them before a run asks. Each peer
gets its own tables or keys in the backend's throwaway database, the SDK's default pool
(Redis: the raw driver's; SQL: a longer pool_timeout), and on SQLite the store's
durability (WAL, which the SDK sets itself, and the same ``synchronous``). A peer
session has no separate create step: its first ``add_items`` creates it, and that first
item is not timed.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bench_async_raw import POOL

Factory = Callable[[str], Any]
"""Makes the peer's session object for one session id."""


def missing_peers() -> list[str]:
    """The bench-only modules the peers need that this interpreter lacks."""
    missing = []
    for module in ("agents.extensions.memory", "asyncpg", "aiosqlite"):
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module.split(".")[0])
    return missing


@contextlib.asynccontextmanager
async def sqlalchemy_session(url: str, synchronous: str) -> AsyncIterator[Factory]:
    """SQLAlchemySession on an async engine over the same database (aiosqlite, asyncpg),
    its own tables (``agent_sessions``, ``agent_messages``)."""
    from agents.extensions.memory import SQLAlchemySession
    from sqlalchemy import event
    from sqlalchemy.ext.asyncio import create_async_engine

    # pool_timeout: at the default 30 s, 200 tasks queued on the default pool (5 + 10)
    # failed with QueuePool's TimeoutError on 2 busy cores, on SQLite and on PostgreSQL
    if url.startswith("sqlite"):
        path = Path(urlsplit(url).path)
        engine = create_async_engine(
            f"sqlite+aiosqlite:///{path.with_name('peer.db')}", pool_timeout=600
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _durability(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.cursor().execute(f"PRAGMA synchronous = {synchronous}")

    else:
        engine = create_async_engine(
            "postgresql+asyncpg://" + url.split("://", 1)[1], pool_timeout=600
        )
    try:
        yield lambda sid: SQLAlchemySession(sid, engine=engine, create_tables=True)
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def redis_session(url: str, _synchronous: str) -> AsyncIterator[Factory]:
    """RedisSession on one redis.asyncio client under the bench's key prefix; the pool is
    the raw driver's (a BlockingConnectionPool of POOL): the default pool fails 200 tasks
    with "Too many connections" past 100."""
    import redis.asyncio as aioredis
    from agents.extensions.memory import RedisSession

    base, _, query = url.partition("?")
    prefix = parse_qs(query)["prefix"][0] + "agents"
    client = aioredis.Redis(
        connection_pool=aioredis.BlockingConnectionPool.from_url(base, max_connections=POOL)
    )
    try:
        yield lambda sid: RedisSession(sid, redis_client=client, key_prefix=prefix)
    finally:
        await client.aclose()


@dataclass(frozen=True)
class Peer:
    name: str
    open: Callable[[str, str], contextlib.AbstractAsyncContextManager[Factory]]


PEERS: dict[str, tuple[Peer, ...]] = {
    "sqlite": (Peer("SQLAlchemySession (aiosqlite)", sqlalchemy_session),),
    "postgres": (Peer("SQLAlchemySession (asyncpg)", sqlalchemy_session),),
    # SQLAlchemySession's tables have VARCHAR columns without a length: MySQL refuses them
    "mysql": (),
    "redis": (Peer("RedisSession", redis_session),),
    # MongoDBSession needs pymongo >= 4.14 (AsyncMongoClient.append_metadata), which no
    # longer talks to MongoDB 4.0, the server we test against (pymongo is pinned < 4.14)
    "mongodb": (),
}
