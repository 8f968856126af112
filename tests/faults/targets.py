"""How each server backend is driven through a :class:`~tests.faults.proxy.FaultProxy`.

``proxied(backend, url, proxy)`` rewrites a conformance URL to go through the proxy,
with short timeouts so a fault is reported in seconds. ``MARKS`` names, per backend,
bytes that identify the request that makes a write durable, so ``drop_reply``
loses exactly the reply of a committed write.

A Redis Cluster client learns the nodes' addresses from ``CLUSTER SLOTS`` and connects to
them itself, so one proxy is not enough: :func:`faulty` gives it a :class:`FaultCluster`
(one proxy per node, armed together) and :func:`store_options` the ``address_remap`` that
points each node's announced address at its proxy.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis

from tests.faults.proxy import FaultProxy, Match

SERVER_BACKENDS = ("postgres", "mysql", "redis", "redis_cluster", "mongodb", "http")

OPTIONS = {
    # no read timeout exists for psycopg: a black-holed PostgreSQL hangs (not tested)
    "postgres": "connect_timeout=1&prepare_threshold=none",
    "mysql": "connect_timeout=1&read_timeout=1&write_timeout=1",
    "redis": "timeout=1&retry_attempts=3",
    # 2 attempts: after a timeout each attempt first re-reads the slot map from every node
    # (a second each when all are black-holed)
    "redis_cluster": "timeout=1&retry_attempts=2",
    # directConnection: else the client finds 127.0.0.1:27017 in the replica-set config
    # and bypasses the proxy; timeoutMS: the store's socket timeout is at least 30 s
    "mongodb": "directConnection=true&timeout=1&retry_attempts=2&timeoutMS=1000",
    # praisondb serve: the client's own timeout and retries (the server's store is local)
    "http": "timeout=1&connect_timeout=1&retry_attempts=3",
}


@dataclass(frozen=True)
class Marks:
    """Request bytes of the writes that commit: a message append, a state write."""

    append: tuple[Match, ...]
    state: tuple[Match, ...]


MARKS = {
    # the append is one autocommit statement; so is a state set (an INSERT ... ON
    # CONFLICT, or an UPDATE at a version); other state writes end with COMMIT
    "postgres": Marks(
        (b"INSERT INTO praisondb_messages",),
        ((b"INSERT INTO praisondb_state", b"UPDATE praisondb_state", b"COMMIT"),),
    ),
    "mysql": Marks((b"COMMIT",), (b"COMMIT",)),
    "redis": Marks((b"EVAL",), (b"EVAL",)),
    "redis_cluster": Marks((b"EVAL",), (b"EVAL",)),
    # a state write is an insert (new key) or an update (replace at a version)
    "mongodb": Marks((b"commitTransaction", b"insert\x00"), ((b"insert\x00", b"update\x00"),)),
    # praisondb serve: the HTTP request that carries the write (the server commits it)
    "http": Marks((b"/messages HTTP/1.1",), (b"PUT /state/",)),
}

STOPPABLE = SERVER_BACKENDS
"""Backends whose server a proxy can stop before the store first connects: the cluster's
client never learns the nodes' own addresses then (see SERVER_BACKENDS)."""

BLACKHOLE = ("mysql", "redis", "redis_cluster", "mongodb", "http")
"""Backends whose store gives up on a silent server (a read timeout); not PostgreSQL."""


def target(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", int(parts.port or 0)


def proxied(backend: str, url: str, proxy: FaultProxy | FaultCluster) -> str:
    """``url`` with its host:port replaced by the proxy's, plus the backend's options."""
    parts = urlsplit(url)
    userinfo, _, _ = parts.netloc.rpartition("@")
    netloc = (userinfo + "@" if userinfo else "") + proxy.address
    query = "&".join(q for q in (parts.query, OPTIONS[backend]) if q)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


class FaultCluster:
    """One :class:`FaultProxy` per Redis Cluster node, with FaultProxy's interface: every
    fault is armed on every node's proxy (only the node that owns the slot a request goes
    to sees it), ``injected`` adds up what fired anywhere, ``address`` is the proxy of the
    node the URL names (the client's startup node)."""

    def __init__(self, first: tuple[str, int], nodes: list[tuple[str, int]]) -> None:
        self.proxies: dict[tuple[str, int], FaultProxy] = {}
        try:
            for node in [first, *(n for n in nodes if n != first)]:
                self.proxies[node] = FaultProxy(*node)
        except BaseException:
            self.close()
            raise
        self._first = self.proxies[first]

    @property
    def address(self) -> str:
        return self._first.address

    def remap(self, address: tuple[str, int]) -> tuple[str, int]:
        """redis-py's ``address_remap``: a node's announced address -> its proxy's."""
        proxy = self.proxies.get(address)
        return ("127.0.0.1", proxy.port) if proxy else address

    @property
    def injected(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for proxy in self.proxies.values():
            total.update(proxy.injected)
        return total

    def drop_reply(self, match: Match | None = None, *, after: int = 0, times: int = 1) -> None:
        for proxy in self.proxies.values():
            proxy.drop_reply(match, after=after, times=times)

    def reset(self, match: Match | None = None, *, after: int = 0) -> None:
        for proxy in self.proxies.values():
            proxy.reset(match, after=after)

    def delay(self, seconds: float) -> None:
        for proxy in self.proxies.values():
            proxy.delay(seconds)

    def blackhole(self) -> None:
        for proxy in self.proxies.values():
            proxy.blackhole()

    def heal(self) -> None:
        for proxy in self.proxies.values():
            proxy.heal()

    def close(self) -> None:
        for proxy in self.proxies.values():
            proxy.close()

    def __enter__(self) -> FaultCluster:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def cluster_nodes(host: str, port: int) -> list[tuple[str, int]]:
    """Every node ``CLUSTER NODES`` reports (masters and replicas), as they announce it."""
    client = redis.Redis(host=host, port=port, socket_timeout=5, socket_connect_timeout=5)
    try:
        nodes = client.execute_command("CLUSTER NODES")  # parsed: {"host:port": {...}}
    finally:
        client.close()
    found = []
    for address in nodes:
        node_host, _, node_port = str(address).rpartition(":")
        found.append((node_host or host, int(node_port)))
    return found


@contextlib.contextmanager
def faulty(backend: str, url: str) -> Iterator[Faults]:
    """The proxy (a proxy per node on a Redis Cluster) in front of ``url``'s server."""
    if backend != "redis_cluster":
        with FaultProxy(*target(url)) as proxy:
            yield proxy
        return
    first = target(url)
    with FaultCluster(first, cluster_nodes(*first)) as cluster:
        yield cluster


Faults = FaultProxy | FaultCluster
"""What the fault tests arm: one proxy, or a proxy per cluster node."""


def store_options(proxy: Faults) -> dict[str, Any]:
    """Keyword options the store needs to stay behind ``proxy``."""
    return {"address_remap": proxy.remap} if isinstance(proxy, FaultCluster) else {}
