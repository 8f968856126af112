"""What the asyncio Redis clients need besides the clients themselves (async face only).

- :class:`CallGate`: at most ``max_connections`` store calls at once (each holds at most
  one connection, one per node on a cluster), the others queued first come, first
  served. redis-py's asyncio ``RedisCluster`` has no blocking pool (past
  ``max_connections`` on a node it raises MaxConnectionsError), and its
  ``BlockingConnectionPool`` lets a task that hands a connection back take it again at
  once, ahead of the tasks waiting: under steady load from hundreds of tasks some waited
  past the timeout and failed. Behind the gate the pool never makes anyone wait.
- :class:`ClusterTransactions`: redis-py's asyncio ``ClusterPipeline`` in transaction mode
  resolves the slot of every command it is given on a private event loop in a new thread
  while the caller's loop waits (``TransactionStrategy.execute_command``: ~0.5 ms per
  command, 4 to 6 per session write, so hundreds of concurrent writers stall the loop for
  many milliseconds). Every transaction of the store touches one slot (its key layout
  promises it), so it runs instead as a plain ``redis.asyncio`` transaction pipeline on
  the primary that owns the slot, on the loop, through a blocking pool per node.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis.exceptions

T = TypeVar("T")
_timeout = getattr(asyncio, "timeout", None)
"""``asyncio.timeout`` (Python 3.11+): a deadline without the task ``wait_for`` makes."""
NO_CONNECTION = "No connection available."
"""What redis-py's BlockingConnectionPool says after waiting ``timeout`` in vain."""


class CallGate:
    """At most ``size`` store calls at once; the others wait their turn (first come, first
    served: ``asyncio.Semaphore`` hands a freed place to the longest waiter) up to
    ``timeout`` seconds, then "No connection available.", as a blocking pool says.

    Entered from the core's greenlets (the semaphore is awaited through the bridge).
    A call that already holds a place passes through, so a nested call cannot deadlock.
    A cancelled waiter takes no place (``asyncio.Semaphore`` hands it on)."""

    def __init__(self, size: int, timeout: float) -> None:
        self._size = size
        self._timeout = timeout
        self._semaphore: asyncio.Semaphore | None = None
        self._holders: set[object] = set()

    def guard(self, fn: Callable[[], T]) -> Callable[[], T]:
        """``fn``, run once a place is free."""
        from greenlet import getcurrent  # type: ignore[import-untyped]

        def run() -> T:
            me = getcurrent()
            if me in self._holders:
                return fn()
            self._enter()
            self._holders.add(me)
            try:
                return fn()
            finally:
                self._holders.discard(me)
                self._release()

        return run

    def _enter(self) -> None:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self._size)
        semaphore = self._semaphore
        if not semaphore.locked():  # a free place: acquire() returns without suspending
            taking = semaphore.acquire()
            try:
                taking.send(None)
            except StopIteration:
                return
            taking.close()  # it suspended after all (cannot happen): wait as below
        self._wait(semaphore)

    def _wait(self, semaphore: asyncio.Semaphore) -> None:
        from ...aio.awaiting import wait

        got = False

        async def take() -> None:
            nonlocal got
            if _timeout is None:  # Python 3.10
                await asyncio.wait_for(semaphore.acquire(), self._timeout)
            else:
                async with _timeout(self._timeout):
                    await semaphore.acquire()
            got = True

        try:
            wait(take())  # raises a cancellation wait_for swallowed (before Python 3.12)
        except asyncio.TimeoutError:
            raise redis.exceptions.ConnectionError(NO_CONNECTION) from None
        except BaseException:
            if got:  # taken, then cancelled: the place goes to the next waiter
                semaphore.release()
            raise

    def _release(self) -> None:
        assert self._semaphore is not None
        self._semaphore.release()


class ClusterTransactions:
    """Transaction pipelines on the primary that owns a key's slot (module docstring).

    The node clients are built from the store's own URL and settings with the node's
    address (after ``address_remap``), so credentials, TLS and timeouts are the cluster
    client's. :meth:`refresh` makes the cluster client re-read its slot map: the store
    calls it when a transaction met a moved slot (MOVED/ASK) or a failing node, before
    its retry runs the transaction again on whichever node owns the slot by then."""

    def __init__(
        self, cluster: Any, driver_url: str, settings: dict[str, Any], size: int, timeout: float
    ) -> None:
        from redis.asyncio.connection import Connection, SSLConnection

        self._cluster = cluster  # the asyncio RedisCluster itself (not wrapped)
        parts = urlsplit(driver_url)
        self._scheme, self._path = parts.scheme, parts.path
        userinfo, _, _ = parts.netloc.rpartition("@")
        self._userinfo = userinfo + "@" if userinfo else ""
        accepted = _parameters(SSLConnection if parts.scheme == "rediss" else Connection)
        self._query = urlencode(  # cluster-only driver options mean nothing to a node
            [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k in accepted]
        )
        self._settings = {k: v for k, v in settings.items() if k != "address_remap"}
        self._size, self._timeout = size, timeout
        self._clients: dict[tuple[str, int], Any] = {}

    def pipeline(self, key: str) -> Any:
        """A transaction pipeline (wrapped for the core) on the primary of ``key``'s slot."""
        try:
            node = self._cluster.get_node_from_key(key)
        except redis.exceptions.SlotNotCoveredError as exc:  # a slot map mid-change
            raise redis.exceptions.ClusterDownError(str(exc)) from None
        address = (str(node.host), int(node.port))
        client = self._clients.get(address)
        if client is None:
            client = self._clients[address] = self._connect(*address)
        return client.pipeline(transaction=True)

    def _connect(self, host: str, port: int) -> Any:
        from redis.asyncio import BlockingConnectionPool, Redis

        from ...aio.awaiting import Awaiting

        shown_host = f"[{host}]" if ":" in host else host
        netloc = f"{self._userinfo}{shown_host}:{port}"
        url = urlunsplit((self._scheme, netloc, self._path, self._query, ""))
        pool = BlockingConnectionPool.from_url(
            url, max_connections=self._size, timeout=self._timeout, **self._settings
        )
        return Awaiting(Redis.from_pool(pool))

    def refresh(self) -> None:
        """Re-read the slot map; a failure here is left to the retry that follows."""
        from ...aio.awaiting import wait

        with contextlib.suppress(
            redis.exceptions.RedisError, redis.exceptions.RedisClusterException
        ):
            wait(self._cluster.nodes_manager.initialize())

    def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.aclose()


def _parameters(connection_class: type[Any]) -> set[str]:
    """The keyword arguments a redis.asyncio connection class takes (its whole MRO)."""
    names: set[str] = set()
    for klass in connection_class.__mro__:
        init = vars(klass).get("__init__")
        if init is not None:
            names.update(inspect.signature(init).parameters)
    return names - {"self", "args", "kwargs"}


__all__ = ["NO_CONNECTION", "CallGate", "ClusterTransactions"]
