"""How each server backend is driven through a :class:`~tests.faults.proxy.FaultProxy`.

``proxied(backend, url, proxy)`` rewrites a conformance URL to go through the proxy,
with short timeouts so a fault is reported in seconds. ``MARKS`` names, per backend,
bytes that identify the request that makes a write durable, so ``drop_reply``
loses exactly the reply of a committed write.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from tests.faults.proxy import FaultProxy, Match

SERVER_BACKENDS = ("postgres", "mysql", "redis", "mongodb")
"""redis_cluster is absent: its client follows the addresses the nodes announce, and the
store has no option to pass redis-py's ``address_remap`` (see test_faults.py)."""

OPTIONS = {
    # no read timeout exists for psycopg: a black-holed PostgreSQL hangs (not tested)
    "postgres": "connect_timeout=1&prepare_threshold=none",
    "mysql": "connect_timeout=1&read_timeout=1&write_timeout=1",
    "redis": "timeout=1&retry_attempts=3",
    "redis_cluster": "timeout=1&retry_attempts=3",
    # directConnection: else the client finds 127.0.0.1:27017 in the replica-set config
    # and bypasses the proxy; timeoutMS: the store's socket timeout is at least 30 s
    "mongodb": "directConnection=true&timeout=1&retry_attempts=2&timeoutMS=1000",
}


@dataclass(frozen=True)
class Marks:
    """Request bytes of the writes that commit: a message append, a state write."""

    append: tuple[Match, ...]
    state: tuple[Match, ...]


MARKS = {
    # the append is one autocommit statement; state writes end with COMMIT
    "postgres": Marks((b"INSERT INTO praisondb_messages",), (b"COMMIT",)),
    "mysql": Marks((b"COMMIT",), (b"COMMIT",)),
    "redis": Marks((b"EVAL",), (b"EVAL",)),
    # a state write is an insert (new key) or an update (replace at a version)
    "mongodb": Marks((b"commitTransaction", b"insert\x00"), ((b"insert\x00", b"update\x00"),)),
}

STOPPABLE = (*SERVER_BACKENDS, "redis_cluster")
"""Backends whose server a proxy can stop before the store first connects: the cluster's
client never learns the nodes' own addresses then (see SERVER_BACKENDS)."""

BLACKHOLE = ("mysql", "redis", "mongodb")
"""Backends whose store gives up on a silent server (a read timeout); not PostgreSQL."""


def target(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", int(parts.port or 0)


def proxied(backend: str, url: str, proxy: FaultProxy) -> str:
    """``url`` with its host:port replaced by the proxy's, plus the backend's options."""
    parts = urlsplit(url)
    userinfo, _, _ = parts.netloc.rpartition("@")
    netloc = (userinfo + "@" if userinfo else "") + proxy.address
    query = "&".join(q for q in (parts.query, OPTIONS[backend]) if q)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
