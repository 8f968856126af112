"""The raw async drivers of tools/bench_async.py: the same work as an AsyncPraisonDB
append or load, written by hand on the bare async driver, on the store's own tables.

Each append assigns a gap-free ``seq`` the way the store must, at the same durability:
SQL bumps the session counter and inserts in one transaction (the SQL of
tools/bench.py's raw classes), Redis runs one Lua script (HINCRBY the counter, ZADD
the message), MongoDB runs a transaction ($inc the session, insert the message). Pools
hold ``POOL`` connections. Loads read the store's own rows and decode them to the same
``Message`` objects a hand-written loader would.
"""

from __future__ import annotations

import abc
import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from bench import (
    _MESSAGE_INSERT,
    _MESSAGE_SELECT,
    _PG_BUMP_INSERT_ONE,
    _SESSION_INSERT,
    LAG,
    RawMongo,
    RawMySQL,
    RawRedis,
    _message,
    _row,
    mysql_args,
)

from praisondb.model import Message
from praisondb.stores.sql.types import from_micros, to_micros

POOL = 10
"""Connections per raw pool (the store's SQLAlchemy pool holds 5, and 10 more on demand)."""


def now() -> datetime:
    return datetime.now(timezone.utc)


class AsyncRaw(abc.ABC):
    """One backend's hand-written async path (see the module docstring)."""

    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def create_session(self, session_id: str) -> None: ...

    @abc.abstractmethod
    async def append(
        self, session_id: str, role: str, content: str, metadata: dict[str, Any]
    ) -> Message:
        """Build the message, assign the next seq and store it, committed."""

    @abc.abstractmethod
    async def load(self, session_id: str) -> list[Message]:
        """The session as Message objects, oldest first."""

    @abc.abstractmethod
    async def close(self) -> None: ...


class AsyncRawSQLite(AsyncRaw):
    """aiosqlite, one connection (SQLite has one writer): BEGIN IMMEDIATE, the counter
    UPDATE ... RETURNING, the INSERT, COMMIT; an asyncio.Lock keeps transactions apart."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.path = parts.path
        self.synchronous = parse_qs(parts.query).get("synchronous", ["NORMAL"])[0].upper()
        self.lock = asyncio.Lock()
        self.bump = (
            "UPDATE praisondb_sessions SET last_seq = last_seq + 1,"
            " message_count = message_count + 1, updated_at = max(updated_at, ?)"
            " WHERE id = ? RETURNING last_seq, updated_floor, updated_at"
        )
        self.raise_floor = "UPDATE praisondb_sessions SET updated_floor = updated_at WHERE id = ?"
        self.lag = LAG // timedelta(microseconds=1)
        self.insert = _MESSAGE_INSERT.format(p="?")

    async def open(self) -> None:
        import aiosqlite

        self.conn = await aiosqlite.connect(self.path, isolation_level=None)
        for pragma in (
            "busy_timeout = 60000",
            "journal_mode = WAL",
            f"synchronous = {self.synchronous}",
            "foreign_keys = ON",
        ):
            await self.conn.execute(f"PRAGMA {pragma}")

    async def create_session(self, session_id: str) -> None:
        stamp = to_micros(now())
        async with self.lock:
            await self.conn.execute(
                _SESSION_INSERT.format(p="?"), (session_id, stamp, stamp, stamp)
            )

    async def append(
        self, session_id: str, role: str, content: str, metadata: dict[str, Any]
    ) -> Message:
        m = Message(session_id, role, content, metadata)
        conn = self.conn
        async with self.lock:
            await conn.execute("BEGIN IMMEDIATE")
            try:
                ((m.seq, floor, updated),) = await conn.execute_fetchall(
                    self.bump, (to_micros(now()), session_id)
                )
                if floor < updated - self.lag:
                    await conn.execute(self.raise_floor, (session_id,))
                await conn.execute(self.insert, _row(session_id, m, m.seq, to_micros(m.created_at)))
                await conn.execute("COMMIT")
            except BaseException:
                await conn.execute("ROLLBACK")
                raise
        return m

    async def load(self, session_id: str) -> list[Message]:
        rows = await self.conn.execute_fetchall(_MESSAGE_SELECT.format(p="?"), (session_id,))
        return [_message(row, from_micros) for row in rows]

    async def close(self) -> None:
        await self.conn.close()


class AsyncRawPostgres(AsyncRaw):
    """psycopg's AsyncConnectionPool in autocommit: an append is one statement (the
    counter UPDATE and the INSERT in one CTE), one round trip, as in tools/bench.py."""

    def __init__(self, url: str) -> None:
        self.conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)

    async def open(self) -> None:
        from psycopg import AsyncConnection
        from psycopg.types.json import set_json_loads
        from psycopg_pool import AsyncConnectionPool

        async def configure(conn: AsyncConnection[Any]) -> None:
            set_json_loads(orjson.loads, conn)

        self.pool: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
            self.conninfo,
            min_size=POOL,
            max_size=POOL,
            kwargs={"autocommit": True},
            configure=configure,
            open=False,
        )
        await self.pool.open(wait=True)

    async def create_session(self, session_id: str) -> None:
        stamp = now()
        async with self.pool.connection() as conn:
            await conn.execute(_SESSION_INSERT.format(p="%s"), (session_id, stamp, stamp, stamp))

    async def append(
        self, session_id: str, role: str, content: str, metadata: dict[str, Any]
    ) -> Message:
        m = Message(session_id, role, content, metadata)
        stamp = now()
        params = {
            "now": stamp,
            "stale": stamp - LAG,
            "sid": session_id,
            "id": m.id,
            "role": role,
            "content": content,
            "metadata": orjson.dumps(metadata).decode(),
            "run_id": None,
            "created": m.created_at,
        }
        async with self.pool.connection() as conn:
            cur = await conn.execute(_PG_BUMP_INSERT_ONE, params)
            row = await cur.fetchone()
        assert row is not None
        m.seq = row[0]
        return m

    async def load(self, session_id: str) -> list[Message]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(_MESSAGE_SELECT.format(p="%s"), (session_id,))
            rows = await cur.fetchall()
        return [_message(row, lambda v: v.astimezone(timezone.utc)) for row in rows]

    async def close(self) -> None:
        await self.pool.close()


class AsyncRawMySQL(AsyncRaw):
    """An aiomysql pool at READ COMMITTED: the counter UPDATE (LAST_INSERT_ID returns the
    new value in the OK packet), the INSERT, COMMIT, as in tools/bench.py."""

    def __init__(self, url: str) -> None:
        from sqlalchemy.engine import make_url

        self.url, self.database = url, make_url(url).database
        self.bump = (
            "UPDATE praisondb_sessions SET last_seq = LAST_INSERT_ID(last_seq + 1),"
            " message_count = message_count + 1,"
            " updated_at = GREATEST(updated_at, CAST(%s AS DATETIME(6))),"
            " updated_floor = CASE WHEN updated_floor < CAST(%s AS DATETIME(6))"
            " THEN updated_at ELSE updated_floor END WHERE id = %s"
        )
        self.insert = _MESSAGE_INSERT.format(p="%s")

    async def open(self) -> None:
        import aiomysql

        self.pool = await aiomysql.create_pool(
            db=self.database,
            minsize=POOL,
            maxsize=POOL,
            init_command="SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
            **mysql_args(self.url),
        )

    async def create_session(self, session_id: str) -> None:
        stamp = RawMySQL._ts(now())
        async with self.pool.acquire() as conn, conn.cursor() as cur:
            await cur.execute(_SESSION_INSERT.format(p="%s"), (session_id, stamp, stamp, stamp))
            await conn.commit()

    async def append(
        self, session_id: str, role: str, content: str, metadata: dict[str, Any]
    ) -> Message:
        m = Message(session_id, role, content, metadata)
        stamp = RawMySQL._ts(now())
        stale = RawMySQL._ts(now() - LAG)
        async with self.pool.acquire() as conn, conn.cursor() as cur:
            try:
                await cur.execute(self.bump, (stamp, stale, session_id))
                m.seq = cur.lastrowid
                row = _row(session_id, m, m.seq, RawMySQL._ts(m.created_at))
                await cur.execute(self.insert, row)
                await conn.commit()
            except BaseException:
                await conn.rollback()
                raise
        return m

    async def load(self, session_id: str) -> list[Message]:
        async with self.pool.acquire() as conn, conn.cursor() as cur:
            await cur.execute(_MESSAGE_SELECT.format(p="%s"), (session_id,))
            rows = await cur.fetchall()
            await conn.commit()
        return [_message(row, lambda v: v.replace(tzinfo=timezone.utc)) for row in rows]

    async def close(self) -> None:
        self.pool.close()
        await self.pool.wait_closed()


_REDIS_APPEND = """
local seq = redis.call('HINCRBY', KEYS[1], 'last_seq', 1)
redis.call('HINCRBY', KEYS[1], 'message_count', 1)
redis.call('HSET', KEYS[1], 'updated_at', ARGV[1])
redis.call('ZADD', KEYS[2], seq, ARGV[2])
return seq
"""


class AsyncRawRedis(AsyncRaw):
    """redis.asyncio on a BlockingConnectionPool: one EVALSHA per append (counter and
    message in one atomic script), keys laid out as the store lays out its own."""

    def __init__(self, url: str) -> None:
        self.base, _, query = url.partition("?")
        self.prefix = parse_qs(query)["prefix"][0]

    def _keys(self, session_id: str) -> list[str]:
        tag = f"{self.prefix}s:{{{session_id}}}:"
        return [tag + "info", tag + "msgs"]

    async def open(self) -> None:
        import redis.asyncio as aioredis

        pool = aioredis.BlockingConnectionPool.from_url(self.base, max_connections=POOL)
        self.r = aioredis.Redis(connection_pool=pool)
        self.script = self.r.register_script(_REDIS_APPEND)

    async def create_session(self, session_id: str) -> None:
        stamp = to_micros(now())
        await self.r.hset(
            self._keys(session_id)[0],
            mapping={"last_seq": 0, "message_count": 0, "created_at": stamp, "updated_at": stamp},
        )

    async def append(
        self, session_id: str, role: str, content: str, metadata: dict[str, Any]
    ) -> Message:
        m = Message(session_id, role, content, metadata)
        member = orjson.dumps([m.id, role, content, metadata, None, to_micros(m.created_at)])
        m.seq = int(await self.script(self._keys(session_id), [to_micros(now()), member]))
        return m

    async def load(self, session_id: str) -> list[Message]:
        rows = await self.r.zrange(self._keys(session_id)[1], 0, -1, withscores=True)
        return RawRedis.decode(session_id, rows)

    async def close(self) -> None:
        await self.r.aclose()


class AsyncRawMongo(AsyncRaw):
    """pymongo's AsyncMongoClient: per append a transaction ($inc the session's counters,
    insert the message, commit; ``with_transaction`` retries transient conflicts), on the
    store's own collections and indexes."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def open(self) -> None:
        from pymongo import AsyncMongoClient, ReturnDocument

        self.client: Any = AsyncMongoClient(self.url)
        db = self.client.get_default_database()
        self.sessions, self.messages = db["sessions"], db["messages"]
        self.after = ReturnDocument.AFTER

    async def create_session(self, session_id: str) -> None:
        stamp = to_micros(now())
        await self.sessions.insert_one(
            {
                "_id": session_id,
                "last_seq": 0,
                "message_count": 0,
                "created_at": stamp,
                "updated_at": stamp,
            }
        )

    async def append(
        self, session_id: str, role: str, content: str, metadata: dict[str, Any]
    ) -> Message:
        m = Message(session_id, role, content, metadata)

        async def body(session: Any) -> None:
            doc = await self.sessions.find_one_and_update(
                {"_id": session_id},
                {
                    "$inc": {"last_seq": 1, "message_count": 1},
                    "$max": {"updated_at": to_micros(now())},
                },
                projection={"last_seq": 1},
                return_document=self.after,
                session=session,
            )
            m.seq = doc["last_seq"]
            await self.messages.insert_one(
                {
                    "_id": f"{session_id}\x1f{m.id}",
                    "sid": session_id,
                    "seq": m.seq,
                    "id": m.id,
                    "role": role,
                    "content": content,
                    "metadata": metadata,
                    "run_id": None,
                    "created_at": to_micros(m.created_at),
                    "p": 1,
                },
                session=session,
            )

        # with_transaction retries TransientTransactionError (MongoDB 4.0 gives up on a
        # lock after 5 ms inside a transaction), as the store's own loop does
        async with self.client.start_session() as session:
            await session.with_transaction(body)
        return m

    async def load(self, session_id: str) -> list[Message]:
        cursor = self.messages.find({"sid": session_id}, {"_id": 0}).sort("seq", 1)
        return RawMongo.decode(await cursor.to_list(None))

    async def close(self) -> None:
        await self.client.close()


RAWS: dict[str, type[AsyncRaw]] = {
    "sqlite": AsyncRawSQLite,
    "postgres": AsyncRawPostgres,
    "mysql": AsyncRawMySQL,
    "redis": AsyncRawRedis,
    "mongodb": AsyncRawMongo,
}
