"""Benchmark praisondb's stores against their raw drivers, measured in the same run.

Usage: .venv/bin/python tools/bench.py [--backends sqlite,postgres,mysql] [--n 2000]
       [--synchronous NORMAL|FULL]

Per backend it prints appends/s one at a time, appends/s in batches of 100, and ms to load
a 10,000-message session, each next to the same operation done through the raw driver
(same tables, same SQL where the store has a single obvious form), the ratio
store/raw, and the per-append time at message ~100 vs ~5,000 (median of a window).
The "bare" column is a plain INSERT + COMMIT (one row, or one executemany of the batch)
with no seq bookkeeping, the floor any store's append stands on; "bare/store" is how many
times a store append costs that (issue 11's target: <= 1.3x). ``--synchronous`` sets
SQLite's synchronous pragma for the store and the raw driver alike (the servers keep
their own durable settings).

A backend is one ``Target`` in ``TARGETS``: a URL factory (a context manager yielding a
throwaway store URL) and a ``Raw`` class doing the same work through the bare driver.
Adding Redis or MongoDB means adding a Raw subclass and one entry, nothing else.
"""

from __future__ import annotations

import abc
import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from praisondb.model import Message, SessionInfo
from praisondb.stores import open_conversation_store
from praisondb.stores.sql.types import from_micros, to_micros

LOAD_SIZE = 10_000
BATCH = 100
WINDOW = 50
ROUNDS = 10
"""Default rounds; ``--rounds`` sets it (more rounds, steadier medians on a busy machine)."""
TEXT = "The quick brown fox jumps over the lazy dog; agents talk a lot. " * 2


def make_messages(session_id: str, n: int, start: int = 0) -> list[Message]:
    return [
        Message(session_id, "user", f"{TEXT} #{start + i}", {"i": start + i, "lang": "en"})
        for i in range(n)
    ]


# -- raw drivers ------------------------------------------------------------------------


class Raw(abc.ABC):
    """The same operations through the bare driver, on the store's own (migrated) tables."""

    @abc.abstractmethod
    def create_session(self, session_id: str) -> None: ...

    @abc.abstractmethod
    def append(self, session_id: str, message: Message) -> None:
        """Assign the next seq and insert one message, committed."""

    @abc.abstractmethod
    def append_batch(self, session_id: str, batch: list[Message]) -> None: ...

    @abc.abstractmethod
    def bare_insert(self, session_id: str, message: Message, seq: int) -> None:
        """Only INSERT + COMMIT, no seq bookkeeping: a floor for context."""

    @abc.abstractmethod
    def bare_batch(self, session_id: str, batch: list[Message], seq: int) -> None:
        """Only the batch's INSERT + COMMIT, seq given from ``seq + 1`` on."""

    @abc.abstractmethod
    def fetch(self, session_id: str) -> list[Any]:
        """The session's rows, undecoded."""

    @abc.abstractmethod
    def load(self, session_id: str) -> list[Message]:
        """The session as Message objects, decoded the way a hand-written loader would."""

    @abc.abstractmethod
    def close(self) -> None: ...


_SESSION_INSERT = (
    "INSERT INTO praisondb_sessions (id, metadata, created_at, updated_at, updated_floor,"
    " message_count, last_seq) VALUES ({p}, '{{}}', {p}, {p}, {p}, 0, 0)"
)
LAG = timedelta(minutes=1)
"""The store's FLOOR_LAG, spelled here so the raw SQL stays self-contained."""
_MESSAGE_INSERT = (
    "INSERT INTO praisondb_messages (session_id, seq, id, role, content_kind, content,"
    " metadata, run_id, created_at) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p})"
)
_MESSAGE_SELECT = (
    "SELECT session_id, seq, id, role, content_kind, content, metadata, run_id, created_at"
    " FROM praisondb_messages WHERE session_id = {p} ORDER BY seq"
)


def _row(session_id: str, m: Message, seq: int, ts: Any) -> tuple[Any, ...]:
    return (
        session_id,
        seq,
        m.id,
        m.role,
        0,
        m.content,
        orjson.dumps(m.metadata).decode(),
        m.run_id,
        ts,
    )


def _message(row: Any, ts: Callable[[Any], datetime]) -> Message:
    sid, seq, id_, role, kind, content, meta, run_id, created = row
    meta = meta if isinstance(meta, dict) else orjson.loads(meta)
    content = orjson.loads(content) if kind else content
    return Message(sid, role, content, meta, run_id, id_, seq, ts(created))


class RawSQLite(Raw):
    def __init__(self, url: str) -> None:
        import sqlite3

        path, _, query = url.split("sqlite:///", 1)[1].partition("?")
        synchronous = query.partition("synchronous=")[2] or "NORMAL"
        self.conn = sqlite3.connect(path, isolation_level=None)
        for pragma in (
            "busy_timeout = 60000",
            "journal_mode = WAL",
            f"synchronous = {synchronous}",
            "foreign_keys = ON",
        ):
            self.conn.execute(f"PRAGMA {pragma}")
        self.bump = (
            "UPDATE praisondb_sessions SET last_seq = last_seq + ?, message_count = message_count + ?,"
            " updated_at = max(updated_at, ?) WHERE id = ?"
        )
        self.counters = (
            "SELECT last_seq, updated_floor, updated_at FROM praisondb_sessions WHERE id = ?"
        )
        self.raise_floor = "UPDATE praisondb_sessions SET updated_floor = updated_at WHERE id = ?"
        self.lag = LAG // timedelta(microseconds=1)
        self.insert = _MESSAGE_INSERT.format(p="?")

    def create_session(self, session_id: str) -> None:
        now = to_micros(datetime.now(timezone.utc))
        self.conn.execute(_SESSION_INSERT.format(p="?"), (session_id, now, now, now))

    def append(self, session_id: str, message: Message) -> None:
        self.append_batch(session_id, [message])

    def append_batch(self, session_id: str, batch: list[Message]) -> None:
        conn, n = self.conn, len(batch)
        conn.execute("BEGIN IMMEDIATE")
        now = to_micros(datetime.now(timezone.utc))
        conn.execute(self.bump, (n, n, now, session_id))
        last, floor, updated = conn.execute(self.counters, (session_id,)).fetchone()
        if floor < updated - self.lag:
            conn.execute(self.raise_floor, (session_id,))
        base = last - n
        rows = [
            _row(session_id, m, base + i, to_micros(m.created_at)) for i, m in enumerate(batch, 1)
        ]
        if n == 1:
            conn.execute(self.insert, rows[0])
        else:
            conn.executemany(self.insert, rows)
        conn.execute("COMMIT")

    def bare_insert(self, session_id: str, message: Message, seq: int) -> None:
        self.conn.execute("BEGIN")
        self.conn.execute(
            self.insert, _row(session_id, message, seq, to_micros(message.created_at))
        )
        self.conn.execute("COMMIT")

    def bare_batch(self, session_id: str, batch: list[Message], seq: int) -> None:
        rows = [
            _row(session_id, m, seq + i, to_micros(m.created_at)) for i, m in enumerate(batch, 1)
        ]
        self.conn.execute("BEGIN")
        self.conn.executemany(self.insert, rows)
        self.conn.execute("COMMIT")

    def fetch(self, session_id: str) -> list[Any]:
        return self.conn.execute(_MESSAGE_SELECT.format(p="?"), (session_id,)).fetchall()

    def load(self, session_id: str) -> list[Message]:
        return [_message(row, from_micros) for row in self.fetch(session_id)]

    def close(self) -> None:
        self.conn.close()


_PG_BUMP_INSERT = """
    WITH s AS (
        UPDATE praisondb_sessions SET last_seq = last_seq + %(n)s,
            message_count = message_count + %(n)s, updated_at = GREATEST(updated_at, %(now)s),
            updated_floor = CASE WHEN updated_floor < %(stale)s
                THEN GREATEST(updated_at, %(now)s) ELSE updated_floor END
        WHERE id = %(sid)s RETURNING last_seq - %(n)s AS base)
    INSERT INTO praisondb_messages
        (session_id, seq, id, role, content_kind, content, metadata, run_id, created_at)
    SELECT %(sid)s, s.base + v.ord, v.id, v.role, v.kind, v.content, v.metadata, v.run_id, v.created
    FROM s, unnest(%(ids)s::text[], %(roles)s::text[], %(kinds)s::smallint[],
        %(contents)s::text[], %(metas)s::text[]::jsonb[], %(run_ids)s::text[],
        %(created)s::timestamptz[])
        WITH ORDINALITY AS v(id, role, kind, content, metadata, run_id, created, ord)
    RETURNING seq
"""

_PG_BUMP_INSERT_ONE = """
    WITH s AS (
        UPDATE praisondb_sessions SET last_seq = last_seq + 1,
            message_count = message_count + 1, updated_at = GREATEST(updated_at, %(now)s),
            updated_floor = CASE WHEN updated_floor < %(stale)s
                THEN GREATEST(updated_at, %(now)s) ELSE updated_floor END
        WHERE id = %(sid)s RETURNING last_seq)
    INSERT INTO praisondb_messages
        (session_id, seq, id, role, content_kind, content, metadata, run_id, created_at)
    SELECT %(sid)s, s.last_seq, %(id)s, %(role)s, 0, %(content)s, %(metadata)s::jsonb,
        %(run_id)s, %(created)s
    FROM s
    RETURNING seq
"""


_PG_BARE_BATCH = """
    INSERT INTO praisondb_messages
        (session_id, seq, id, role, content_kind, content, metadata, run_id, created_at)
    SELECT %(sid)s, v.seq, v.id, v.role, v.kind, v.content, v.metadata, v.run_id, v.created
    FROM unnest(%(seqs)s::bigint[], %(ids)s::text[], %(roles)s::text[], %(kinds)s::smallint[],
        %(contents)s::text[], %(metas)s::text[]::jsonb[], %(run_ids)s::text[],
        %(created)s::timestamptz[]) AS v(seq, id, role, kind, content, metadata, run_id, created)
"""


class RawPostgres(Raw):
    def __init__(self, url: str) -> None:
        import psycopg
        from psycopg.types.json import set_json_loads

        # autocommit: every operation below is one statement, so one round trip each,
        # the fastest a hand-written caller gets (a transaction adds BEGIN and COMMIT)
        self.conn = psycopg.connect(
            url.replace("postgresql+psycopg://", "postgresql://", 1), autocommit=True
        )
        set_json_loads(orjson.loads, self.conn)

    def create_session(self, session_id: str) -> None:
        now = datetime.now(timezone.utc)
        self.conn.execute(_SESSION_INSERT.format(p="%s"), (session_id, now, now, now))

    def append(self, session_id: str, message: Message) -> None:
        now = datetime.now(timezone.utc)
        params = {
            "now": now,
            "stale": now - LAG,
            "sid": session_id,
            "id": message.id,
            "role": message.role,
            "content": message.content,
            "metadata": orjson.dumps(message.metadata).decode(),
            "run_id": message.run_id,
            "created": message.created_at,
        }
        self.conn.execute(_PG_BUMP_INSERT_ONE, params).fetchall()

    def append_batch(self, session_id: str, batch: list[Message]) -> None:
        now = datetime.now(timezone.utc)
        params = {
            "n": len(batch),
            "now": now,
            "stale": now - LAG,
            "sid": session_id,
            "ids": [m.id for m in batch],
            "roles": [m.role for m in batch],
            "kinds": [0] * len(batch),
            "contents": [m.content for m in batch],
            "metas": [orjson.dumps(m.metadata).decode() for m in batch],
            "run_ids": [m.run_id for m in batch],
            "created": [m.created_at for m in batch],
        }
        self.conn.execute(_PG_BUMP_INSERT, params).fetchall()

    def bare_insert(self, session_id: str, message: Message, seq: int) -> None:
        self.conn.execute(
            _MESSAGE_INSERT.format(p="%s"), _row(session_id, message, seq, message.created_at)
        )

    def bare_batch(self, session_id: str, batch: list[Message], seq: int) -> None:
        """One statement over arrays, as the store sends it (autocommit: one round trip)."""
        params = {
            "sid": session_id,
            "seqs": list(range(seq + 1, seq + 1 + len(batch))),
            "ids": [m.id for m in batch],
            "roles": [m.role for m in batch],
            "kinds": [0] * len(batch),
            "contents": [m.content for m in batch],
            "metas": [orjson.dumps(m.metadata).decode() for m in batch],
            "run_ids": [m.run_id for m in batch],
            "created": [m.created_at for m in batch],
        }
        self.conn.execute(_PG_BARE_BATCH, params)

    def fetch(self, session_id: str) -> list[Any]:
        return self.conn.execute(_MESSAGE_SELECT.format(p="%s"), (session_id,)).fetchall()

    def load(self, session_id: str) -> list[Message]:
        return [
            _message(row, lambda v: v.astimezone(timezone.utc)) for row in self.fetch(session_id)
        ]

    def close(self) -> None:
        self.conn.close()


def mysql_args(url: str) -> dict[str, Any]:
    """connect() arguments of PyMySQL and aiomysql for a ``mysql+pymysql://`` URL, less
    the database (``database=`` for one, ``db=`` for the other)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return {
        "host": parsed.host,
        "port": parsed.port or 3306,
        "user": parsed.username,
        "password": parsed.password or "",
        "charset": "utf8mb4",
        "autocommit": False,
    }


class RawMySQL(Raw):
    def __init__(self, url: str) -> None:
        import pymysql
        from sqlalchemy.engine import make_url

        self.conn = pymysql.connect(database=make_url(url).database, **mysql_args(url))
        self.cur = self.conn.cursor()
        self.cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        self.bump = (
            "UPDATE praisondb_sessions SET last_seq = LAST_INSERT_ID(last_seq + %s),"
            " message_count = message_count + %s,"
            " updated_at = GREATEST(updated_at, CAST(%s AS DATETIME(6))),"
            " updated_floor = CASE WHEN updated_floor < CAST(%s AS DATETIME(6))"
            " THEN updated_at ELSE updated_floor END WHERE id = %s"
        )
        self.insert = _MESSAGE_INSERT.format(p="%s")

    @staticmethod
    def _ts(value: datetime) -> datetime:
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def create_session(self, session_id: str) -> None:
        now = self._ts(datetime.now(timezone.utc))
        self.cur.execute(_SESSION_INSERT.format(p="%s"), (session_id, now, now, now))
        self.conn.commit()

    def append(self, session_id: str, message: Message) -> None:
        self.append_batch(session_id, [message])

    def append_batch(self, session_id: str, batch: list[Message]) -> None:
        n = len(batch)
        now = self._ts(datetime.now(timezone.utc))
        stale = self._ts(datetime.now(timezone.utc) - LAG)
        self.cur.execute(self.bump, (n, n, now, stale, session_id))
        base = self.cur.lastrowid - n
        rows = [
            _row(session_id, m, base + i, self._ts(m.created_at)) for i, m in enumerate(batch, 1)
        ]
        self.cur.executemany(self.insert, rows)
        self.conn.commit()

    def bare_insert(self, session_id: str, message: Message, seq: int) -> None:
        self.cur.execute(self.insert, _row(session_id, message, seq, self._ts(message.created_at)))
        self.conn.commit()

    def bare_batch(self, session_id: str, batch: list[Message], seq: int) -> None:
        rows = [
            _row(session_id, m, seq + i, self._ts(m.created_at)) for i, m in enumerate(batch, 1)
        ]
        self.cur.executemany(self.insert, rows)
        self.conn.commit()

    def fetch(self, session_id: str) -> list[Any]:
        self.cur.execute(_MESSAGE_SELECT.format(p="%s"), (session_id,))
        rows = list(self.cur.fetchall())
        self.conn.commit()
        return rows

    def load(self, session_id: str) -> list[Message]:
        return [
            _message(row, lambda v: v.replace(tzinfo=timezone.utc))
            for row in self.fetch(session_id)
        ]

    def close(self) -> None:
        self.conn.close()


class RawRedis(Raw):
    """redis-py alone: RPUSH of a JSON message per append, pipelined RPUSH per batch."""

    def __init__(self, url: str) -> None:
        import redis

        self.prefix = "rawbench:" + uuid.uuid4().hex[:8] + ":"
        self.store_prefix = url.split("prefix=", 1)[1]
        self.r = redis.Redis.from_url(url.split("?", 1)[0])

    def _key(self, session_id: str) -> str:
        return f"{self.prefix}{{{session_id}}}:msgs"

    def create_session(self, session_id: str) -> None:
        self.r.hset(f"{self.prefix}{{{session_id}}}:info", mapping={"last_seq": 0})

    def _json(self, m: Message, seq: int) -> bytes:
        return orjson.dumps(
            [m.id, seq, m.role, m.content, m.metadata, m.run_id, m.created_at.isoformat()]
        )

    def append(self, session_id: str, message: Message) -> None:
        self.r.rpush(self._key(session_id), self._json(message, 0))

    def append_batch(self, session_id: str, batch: list[Message]) -> None:
        pipe = self.r.pipeline(transaction=False)
        for m in batch:
            pipe.rpush(self._key(session_id), self._json(m, 0))
        pipe.execute()

    def bare_insert(self, session_id: str, message: Message, seq: int) -> None:
        self.r.rpush(self._key(session_id), self._json(message, seq))

    def bare_batch(self, session_id: str, batch: list[Message], seq: int) -> None:
        pipe = self.r.pipeline(transaction=False)
        for i, m in enumerate(batch, 1):
            pipe.rpush(self._key(session_id), self._json(m, seq + i))
        pipe.execute()

    def fetch(self, session_id: str) -> list[Any]:
        """The store's own sorted set, read with one raw ZRANGE."""
        key = f"{self.store_prefix}s:{{{session_id}}}:msgs"
        return list(self.r.zrange(key, 0, -1, withscores=True))

    def load(self, session_id: str) -> list[Message]:
        return self.decode(session_id, self.fetch(session_id))

    @staticmethod
    def decode(session_id: str, rows: list[Any]) -> list[Message]:
        """ZRANGE ... WITHSCORES rows of the store's sorted set as Message objects."""
        out = []
        for raw, seq in rows:
            id_, role, content, meta, run_id, created = orjson.loads(raw)
            out.append(
                Message(
                    session_id, role, content, meta, run_id, id_, int(seq), from_micros(created)
                )
            )
        return out

    def close(self) -> None:
        keys = list(self.r.scan_iter(match=self.prefix + "*"))
        if keys:
            self.r.unlink(*keys)
        self.r.close()


class RawMongo(Raw):
    """pymongo alone: insert_one per append, insert_many per batch, on a (sid, seq) index."""

    def __init__(self, url: str) -> None:
        import pymongo

        self.client: Any = pymongo.MongoClient(url)
        self.coll = self.client.get_default_database()["raw_messages"]
        self.store_coll = self.client.get_default_database()["messages"]
        self.coll.create_index([("sid", 1), ("seq", 1)])

    def create_session(self, session_id: str) -> None:
        self.coll.database["raw_sessions"].insert_one({"_id": session_id, "last_seq": 0})

    def _doc(self, session_id: str, m: Message, seq: int) -> dict[str, Any]:
        return {
            "sid": session_id,
            "seq": seq,
            "id": m.id,
            "role": m.role,
            "content": m.content,
            "metadata": m.metadata,
            "run_id": m.run_id,
            "created_at": m.created_at,
        }

    def append(self, session_id: str, message: Message) -> None:
        self.coll.insert_one(self._doc(session_id, message, 0))

    def append_batch(self, session_id: str, batch: list[Message]) -> None:
        self.coll.insert_many([self._doc(session_id, m, 0) for m in batch])

    def bare_insert(self, session_id: str, message: Message, seq: int) -> None:
        self.coll.insert_one(self._doc(session_id, message, seq))

    def bare_batch(self, session_id: str, batch: list[Message], seq: int) -> None:
        self.coll.insert_many([self._doc(session_id, m, seq + i) for i, m in enumerate(batch, 1)])

    def fetch(self, session_id: str) -> list[Any]:
        """The store's own collection, read with one raw find (no key unescaping); the
        long ``_id`` is projected away, as a hand-written loader would."""
        return list(self.store_coll.find({"sid": session_id}, {"_id": 0}).sort("seq", 1))

    def load(self, session_id: str) -> list[Message]:
        return self.decode(self.fetch(session_id))

    @staticmethod
    def decode(docs: list[dict[str, Any]]) -> list[Message]:
        """The store's message documents (plain ones) as Message objects."""
        return [
            Message(
                d["sid"],
                d["role"],
                d["content"],
                d["metadata"],
                d["run_id"],
                d["id"],
                d["seq"],
                from_micros(d["created_at"]),
            )
            for d in docs
        ]

    def close(self) -> None:
        self.client.close()


# -- throwaway stores -----------------------------------------------------------------------


@contextlib.contextmanager
def sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="praisondb-bench-") as tmp:
        yield f"sqlite:///{tmp}/bench.db"


@contextlib.contextmanager
def postgres_url() -> Iterator[str]:
    import psycopg

    base = os.environ.get(
        "PRAISONDB_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
    )
    name = f"pdb_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def mysql_url() -> Iterator[str]:
    import pymysql

    name = f"pdb_bench_{uuid.uuid4().hex[:8]}"
    host = os.environ.get("PRAISONDB_BENCH_MYSQL_HOST", "127.0.0.1")
    with pymysql.connect(host=host, user="root", password="", autocommit=True) as conn:
        conn.cursor().execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    try:
        yield f"mysql+pymysql://root@{host}:3306/{name}"
    finally:
        with pymysql.connect(host=host, user="root", password="", autocommit=True) as conn:
            conn.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")


@contextlib.contextmanager
def redis_url() -> Iterator[str]:
    import redis

    base = os.environ.get("PRAISONDB_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix = f"pdb_bench_{uuid.uuid4().hex[:8]}:"
    try:
        yield f"{base}?prefix={prefix}"
    finally:
        client = redis.Redis.from_url(base)
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        for start in range(0, len(keys), 1000):
            client.unlink(*keys[start : start + 1000])
        client.close()


@contextlib.contextmanager
def mongodb_url() -> Iterator[str]:
    import pymongo

    base = os.environ.get(
        "PRAISONDB_BENCH_MONGODB_URL", "mongodb://127.0.0.1:27017/?replicaSet=rs0"
    )
    name = f"pdb_bench_{uuid.uuid4().hex[:8]}"
    location, _, query = base.partition("?")
    try:
        scheme, _, rest = location.partition("://")
        yield f"{scheme}://{rest.split('/', 1)[0]}/{name}" + (f"?{query}" if query else "")
    finally:
        client: Any = pymongo.MongoClient(base)
        client.drop_database(name)
        client.close()


@dataclass(frozen=True)
class Target:
    name: str
    url: Callable[[], AbstractContextManager[str]]
    raw: Callable[[str], Raw]


TARGETS: dict[str, Target] = {
    "sqlite": Target("sqlite", sqlite_url, RawSQLite),
    "postgres": Target("postgres", postgres_url, RawPostgres),
    "mysql": Target("mysql", mysql_url, RawMySQL),
    "redis": Target("redis", redis_url, RawRedis),
    "mongodb": Target("mongodb", mongodb_url, RawMongo),
}


# -- measurements -----------------------------------------------------------------------------


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def rate(count: int, fn: Callable[[], object]) -> float:
    return count / timed(fn)


def one_by_one(append: Callable[[Message], object], batch: list[Message]) -> Callable[[], None]:
    def go() -> None:
        for m in batch:
            append(m)

    return go


def window_median_us(append: Callable[[Message], object], sid: str, start: int) -> float:
    return statistics.median(
        timed(lambda m=m: append(m)) * 1e6 for m in make_messages(sid, WINDOW, start)
    )


class Bench:
    """One backend's measurements: the store and the raw driver take turns, round by round,
    so background load hits both alike; each figure is the median (or best) of the rounds."""

    def __init__(self, url: str, raw: Raw, n: int, rounds: int = ROUNDS) -> None:
        self.store = open_conversation_store(url, auto_migrate=True)
        self.raw = raw
        self.n = n
        self.rounds = rounds

    def session(self, prefix: str) -> str:
        sid = f"{prefix}-{uuid.uuid4().hex[:8]}"
        self.store.create_session(SessionInfo(sid))
        return sid

    def raw_session(self, prefix: str) -> str:
        sid = f"{prefix}-{uuid.uuid4().hex[:8]}"
        self.raw.create_session(sid)
        return sid

    def store_append(self, sid: str) -> Callable[[Message], object]:
        return lambda m: self.store.append_messages(sid, [m])

    def warm_up(self) -> None:
        one_by_one(self.store_append(self.session("warm")), make_messages("warm", 50))()
        rsid = self.raw_session("rwarm")
        one_by_one(lambda m: self.raw.append(rsid, m), make_messages(rsid, 50))()

    def appends(self) -> dict[str, float]:
        sid, rsid, bsid = self.session("one"), self.raw_session("raw-one"), self.raw_session("bare")
        per_round = max(1, self.n // self.rounds)
        rates: dict[str, list[float]] = {"append_store": [], "append_raw": [], "append_bare": []}
        seq = 0

        def bare(m: Message) -> None:
            nonlocal seq
            seq += 1
            self.raw.bare_insert(bsid, m, seq)

        for r in range(self.rounds):
            start = r * per_round
            rates["append_store"].append(
                rate(
                    per_round,
                    one_by_one(self.store_append(sid), make_messages(sid, per_round, start)),
                )
            )
            rates["append_raw"].append(
                rate(
                    per_round,
                    one_by_one(
                        lambda m: self.raw.append(rsid, m), make_messages(rsid, per_round, start)
                    ),
                )
            )
            rates["append_bare"].append(
                rate(per_round, one_by_one(bare, make_messages(bsid, per_round, start)))
            )
        return _medians(rates, "append")

    def batches(self) -> dict[str, float]:
        sid, rsid = self.session("batch"), self.raw_session("raw-batch")
        bsid = self.raw_session("bare-batch")
        per_round = max(1, self.n // BATCH // self.rounds)
        rates: dict[str, list[float]] = {"batch_store": [], "batch_raw": [], "batch_bare": []}
        seq = 0

        def bare(b: list[Message]) -> None:
            nonlocal seq
            self.raw.bare_batch(bsid, b, seq)
            seq += len(b)

        for r in range(self.rounds):
            start = r * per_round * BATCH
            mine = [make_messages(sid, BATCH, start + i * BATCH) for i in range(per_round)]
            theirs = [make_messages(rsid, BATCH, start + i * BATCH) for i in range(per_round)]
            floor = [make_messages(bsid, BATCH, start + i * BATCH) for i in range(per_round)]
            total = BATCH * per_round
            rates["batch_store"].append(
                rate(total, one_by_one(lambda b: self.store.append_messages(sid, b), mine))
            )  # type: ignore[arg-type]
            rates["batch_raw"].append(
                rate(total, one_by_one(lambda b: self.raw.append_batch(rsid, b), theirs))
            )  # type: ignore[arg-type]
            rates["batch_bare"].append(rate(total, one_by_one(bare, floor)))  # type: ignore[arg-type]
        return _medians(rates, "batch")

    def loads(self) -> dict[str, float]:
        big = self.session("load")
        for start in range(0, LOAD_SIZE, 1000):
            self.store.append_messages(big, make_messages(big, 1000, start))
        assert len(self.store.list_messages(big)) == LOAD_SIZE
        assert len(self.raw.load(big)) == LOAD_SIZE
        times: dict[str, list[float]] = {"load_store": [], "load_raw": [], "load_fetch_only": []}
        for _ in range(7):
            times["load_store"].append(timed(lambda: self.store.list_messages(big)) * 1000)
            times["load_raw"].append(timed(lambda: self.raw.load(big)) * 1000)
            times["load_fetch_only"].append(timed(lambda: self.raw.fetch(big)) * 1000)
        return {k: min(v) for k, v in times.items()}

    def growth(self) -> dict[str, float]:
        """Per-append time with ~100 and ~5,000 messages already in the session."""
        grow = self.session("grow")
        append = self.store_append(grow)
        self.store.append_messages(grow, make_messages(grow, 100))
        at_100 = window_median_us(append, grow, 100)
        filled = 100 + WINDOW
        while filled < 5000:
            step = min(1000, 5000 - filled)
            self.store.append_messages(grow, make_messages(grow, step, filled))
            filled += step
        return {"at_100_us": at_100, "at_5000_us": window_median_us(append, grow, 5000)}

    def run(self) -> dict[str, float]:
        self.warm_up()
        return {**self.appends(), **self.batches(), **self.loads(), **self.growth()}

    def close(self) -> None:
        self.raw.close()
        self.store.close()


def _medians(rates: dict[str, list[float]], kind: str) -> dict[str, float]:
    """Median rates, and the medians of the per-round ratios: store, raw and bare run
    back to back in each round, so a ratio within a round sees the same machine load
    (on a shared machine the rates drift between rounds far more than the ratios)."""
    out = {k: statistics.median(v) for k, v in rates.items()}
    store = rates[f"{kind}_store"]
    for other in ("raw", "bare"):
        pairs = zip(rates[f"{kind}_{other}"], store, strict=True)
        out[f"{kind}_{other}_ratio"] = statistics.median(o / s for o, s in pairs)
    return out


def run(target: Target, n: int, synchronous: str, rounds: int = ROUNDS) -> dict[str, float]:
    with target.url() as url:
        if target.name == "sqlite":
            url += f"?synchronous={synchronous}"
        bench = Bench(url, target.raw(url), n, rounds)
        try:
            return bench.run()
        finally:
            bench.close()


def report(name: str, r: dict[str, float]) -> None:
    print(f"\n== {name}")
    print(f"{'operation':<28}{'store':>12}{'raw':>12}{'raw/store':>11}   target")
    for label, key in (
        ("append, one at a time /s", "append"),
        ("append, batches of 100 /s", "batch"),
    ):
        store, raw, bare = r[f"{key}_store"], r[f"{key}_raw"], r[f"{key}_bare"]
        to_raw, to_bare = r[f"{key}_raw_ratio"], r[f"{key}_bare_ratio"]
        print(
            f"{label:<28}{store:>12,.0f}{raw:>12,.0f}{to_raw:>10.2f}x   <= 1.3x"
            f"   (bare INSERT+COMMIT: {bare:,.0f}/s, bare/store {to_bare:.2f}x <= 1.3x)"
        )
    ratio = r["load_store"] / r["load_raw"]
    print(
        f"{'load 10,000 messages ms':<28}{r['load_store']:>12.1f}{r['load_raw']:>12.1f}{ratio:>10.2f}x   <= 1.5x"
        f"   (fetch only, no objects: {r['load_fetch_only']:.1f} ms)"
    )
    ratio = r["at_5000_us"] / r["at_100_us"]
    print(f"{'append at msg ~100 us':<28}{r['at_100_us']:>12.0f}")
    print(
        f"{'append at msg ~5,000 us':<28}{r['at_5000_us']:>12.0f}{'':>12}{ratio:>10.2f}x   <= 1.2x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgres,mysql")
    parser.add_argument("--n", type=int, default=2000, help="appends per one-at-a-time run")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="alternating rounds")
    parser.add_argument(
        "--synchronous",
        default="NORMAL",
        choices=("NORMAL", "FULL"),
        help="SQLite's synchronous pragma, for the store and the raw driver alike",
    )
    args = parser.parse_args()
    names = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = sorted(set(names) - set(TARGETS))
    if unknown:
        parser.error(f"unknown backends {unknown}; known: {sorted(TARGETS)}")
    print(
        f"n={args.n}  (raw = same SQL through the bare driver, same tables, same run;"
        f" store, raw and bare alternate in {args.rounds} rounds, medians shown, ratios are"
        f" medians of per-round ratios;"
        f" SQLite synchronous={args.synchronous})"
    )
    for name in names:
        report(name, run(TARGETS[name], args.n, args.synchronous, args.rounds))


if __name__ == "__main__":
    main()
