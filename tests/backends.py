"""Every backend the conformance suite runs against, as one table.

A backend is a function that yields a fresh, private URL (its own database, directory
or key prefix) and cleans up afterwards. Adding a backend means adding one entry here;
the tests never change. Server URLs come from ``PRAISONDB_TEST_<NAME>_URL`` (printed by
``tools/services.sh env``) with local defaults.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from praisondb.stores.base import Capability

BackendFactory = Callable[[Path], AbstractContextManager[str]]


@dataclass(frozen=True)
class TestBackend:
    __test__ = False  # a fixture value, not a test class

    name: str
    factory: BackendFactory
    scheme: str
    """The URL scheme, which names the store class (see praisondb.urls.SCHEMES)."""

    def store_class(self) -> type:
        from praisondb.stores import load_backend_class
        from praisondb.urls import parse_url

        return load_backend_class(parse_url(f"{self.scheme}://placeholder"))

    def capabilities(self) -> frozenset[Capability]:
        """What the store class declares. A store may narrow it per URL (in-memory
        SQLite); the ``db`` fixture checks that the opened store promises exactly this."""
        declared: frozenset[Capability] = self.store_class().capabilities
        return declared

    @property
    def multi_process(self) -> bool:
        """Whether other processes can open the same store (not memory://)."""
        return Capability.MULTI_PROCESS in self.capabilities()

    def has(self, protocol: type) -> bool:
        """Whether the store class implements every method of an optional protocol."""
        methods = [name for name in vars(protocol) if not name.startswith("_")]
        return all(callable(getattr(self.store_class(), name, None)) for name in methods)


def env_url(name: str, default: str) -> str:
    return os.environ.get(f"PRAISONDB_TEST_{name.upper()}_URL", default)


def _unique(prefix: str = "pdbt") -> str:
    return f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def memory_backend(tmp: Path) -> Iterator[str]:
    yield "memory://"


@contextlib.contextmanager
def sqlite_backend(tmp: Path) -> Iterator[str]:
    yield f"sqlite:///{tmp / 'conformance.db'}"


@contextlib.contextmanager
def json_backend(tmp: Path) -> Iterator[str]:
    root = tmp / "jsonstore"
    root.mkdir()
    yield f"json://{root}"


@contextlib.contextmanager
def postgres_backend(tmp: Path) -> Iterator[str]:
    import psycopg

    base = env_url("postgres", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    name = _unique()
    admin = base.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def mysql_backend(tmp: Path) -> Iterator[str]:
    import pymysql
    from sqlalchemy.engine import make_url

    base = env_url("mysql", "mysql+pymysql://root@127.0.0.1:3306/test")
    url = make_url(base)
    name = _unique()

    def admin() -> pymysql.connections.Connection:  # type: ignore[type-arg]
        return pymysql.connect(
            host=url.host or "127.0.0.1",
            port=url.port or 3306,
            user=url.username or "root",
            password=url.password or "",
            autocommit=True,
            connect_timeout=5,
        )

    with admin() as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin() as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


@contextlib.contextmanager
def redis_backend(tmp: Path) -> Iterator[str]:
    """A private key prefix on the shared server; its keys are removed with SCAN afterwards."""
    import redis

    base = env_url("redis", "redis://127.0.0.1:6379/0")
    prefix = _unique() + ":"
    client = redis.Redis.from_url(base, socket_connect_timeout=5, socket_timeout=30)
    client.ping()
    try:
        yield f"{base}{'&' if '?' in base else '?'}prefix={prefix}"
    finally:
        batch = list(client.scan_iter(match=prefix + "*", count=1000))
        for start in range(0, len(batch), 1000):
            client.unlink(*batch[start : start + 1000])
        client.close()


@contextlib.contextmanager
def redis_cluster_backend(tmp: Path) -> Iterator[str]:
    """A private key prefix on the shared 3-master Redis Cluster (``tools/services.sh up``)."""
    import redis.cluster

    base = env_url("redis_cluster", "redis://127.0.0.1:7001/0?cluster=true")
    prefix = _unique() + ":"
    client = redis.cluster.RedisCluster.from_url(
        base.split("?", 1)[0], socket_connect_timeout=5, socket_timeout=30
    )
    try:
        yield f"{base}{'&' if '?' in base else '?'}prefix={prefix}"
    finally:
        pipe = client.pipeline(transaction=False)  # keys of many slots: split per node
        for name in client.scan_iter(match=prefix + "*", count=1000):
            pipe.unlink(name)
        pipe.execute()
        client.close()


@contextlib.contextmanager
def mongodb_backend(tmp: Path) -> Iterator[str]:
    """A private database on the shared server (a one-node replica set), dropped afterwards."""
    import pymongo

    base = env_url("mongodb", "mongodb://127.0.0.1:27017/?replicaSet=rs0")
    name = _unique()
    location, _, query = base.partition("?")
    scheme, _, rest = location.partition("://")
    url = f"{scheme}://{rest.split('/', 1)[0]}/{name}" + (f"?{query}" if query else "")
    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
        base, serverSelectionTimeoutMS=5000
    )
    client.admin.command("ping")
    try:
        yield url
    finally:
        client.drop_database(name)
        client.close()


@contextlib.contextmanager
def http_backend(tmp: Path) -> Iterator[str]:
    """A real ``praisondb serve`` subprocess over a private SQLite store, on a socket this
    process bound (a free port, no race), ready once ``/readyz`` answers."""
    from tests.server.serving import serve

    # the suite moves its clock forward to lapse TTLs and leases: the server follows it
    args = ("--follow-client-clock",)
    with serve(f"sqlite:///{tmp / 'server.db'}", tmp, args=args) as server:
        yield server.client_url


BACKENDS: dict[str, TestBackend] = {
    "memory": TestBackend("memory", memory_backend, "memory"),
    "sqlite": TestBackend("sqlite", sqlite_backend, "sqlite"),
    "json": TestBackend("json", json_backend, "json"),
    "postgres": TestBackend("postgres", postgres_backend, "postgresql"),
    "mysql": TestBackend("mysql", mysql_backend, "mysql"),
    "redis": TestBackend("redis", redis_backend, "redis"),
    "redis_cluster": TestBackend("redis_cluster", redis_cluster_backend, "redis"),
    "mongodb": TestBackend("mongodb", mongodb_backend, "mongodb"),
    "http": TestBackend("http", http_backend, "praisondb+http"),
}
