"""The redis-py client a RedisStore talks through: sync or asyncio, one server or a Cluster.

The async face (``io="async"``) gets the ``redis.asyncio`` twin of the sync client,
wrapped in :class:`~praisondb.aio.awaiting.Awaiting` so the one store implementation
drives either. What differs between the twins is handled here, once:

- the asyncio ``Redis`` sits on a ``BlockingConnectionPool``: hundreds of tasks on one
  loop wait (up to the ``timeout`` option) for one of ``max_connections`` connections
  instead of failing with "Too many connections" as a bounded plain pool does;
- the asyncio ``RedisCluster`` reads the slot map on its first command, the sync one in
  its constructor; it is initialised here, so opening fails the same way on both faces
  (ConfigError for a node without cluster mode, BackendUnavailable when unreachable);
- what else the asyncio clients need (a fair queue in front of the pools, cluster
  transactions on the loop) is in :mod:`.aio`.
"""

from __future__ import annotations

import contextlib
from typing import Any

import redis
import redis.exceptions

from ...errors import ConfigError
from ...retry import driver_text
from ...urls import StoreURL, redact_text

ASYNC_POOL_SIZE = 50
"""Connections of the async face's pool (per Cluster node) unless the URL sets
``max_connections``: far more than one loop keeps busy, far fewer than a server allows."""


def plain_client(url: StoreURL, driver_url: str, settings: dict[str, Any], io: str) -> Any:
    """``redis.Redis`` (or its asyncio twin on a blocking pool) for one server."""
    try:
        if io == "sync":
            return redis.Redis.from_url(driver_url, **settings)
        from redis.asyncio import BlockingConnectionPool, Redis

        from ...aio.awaiting import Awaiting

        pool = BlockingConnectionPool.from_url(
            driver_url,
            max_connections=ASYNC_POOL_SIZE,
            timeout=settings["socket_timeout"],  # waiting for a connection is part of a call
            **async_settings(settings),
        )
        return Awaiting(Redis.from_pool(pool))
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"bad redis URL {url.redacted}: {redact_text(str(exc), url.secret)}"
        ) from None


def cluster_client(url: StoreURL, driver_url: str, settings: dict[str, Any], io: str) -> Any:
    """A connected ``RedisCluster`` (sync or asyncio): it has read the slot map."""
    try:
        if io == "sync":
            from redis.cluster import RedisCluster

            return RedisCluster.from_url(driver_url, **settings)
        return _async_cluster(driver_url, settings)
    except redis.exceptions.RedisClusterException as exc:
        text = driver_text(exc, url.secret)
        if "Cluster mode is not enabled" in text:
            raise ConfigError(
                f"{url.redacted} is not a Redis Cluster node; drop cluster=true"
            ) from None
        if "reachable" in text or "cannot be connected" in text:
            raise redis.exceptions.ConnectionError(text) from None  # retried
        raise ConfigError(f"cannot use {url.redacted} as a Redis Cluster: {text}") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"bad redis URL {url.redacted}: {redact_text(str(exc), url.secret)}"
        ) from None


def _async_cluster(driver_url: str, settings: dict[str, Any]) -> Any:
    from redis.asyncio.cluster import RedisCluster

    from ...aio.awaiting import Awaiting

    client = Awaiting(
        RedisCluster.from_url(
            driver_url, max_connections=ASYNC_POOL_SIZE, **async_settings(settings)
        )
    )
    try:
        client.initialize()  # what the sync constructor does: read the slot map now
    except BaseException:
        with contextlib.suppress(Exception):
            client.aclose()
        raise
    return client


def async_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The same settings for an asyncio client: its driver-level retry is the asyncio
    ``Retry`` (none either way: praisondb's own policy retries whole operations)."""
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    return {**settings, "retry": Retry(NoBackoff(), 0)}


def pool_size(driver_url: str) -> int:
    """The async pool's size: the URL's ``max_connections``, else :data:`ASYNC_POOL_SIZE`."""
    from redis.asyncio.connection import parse_url

    size = parse_url(driver_url).get("max_connections")
    return int(size) if isinstance(size, int) and size > 0 else ASYNC_POOL_SIZE


def close_client(client: Any, cluster: bool, io: str) -> None:
    """Disconnect every pooled connection (each node's, on a cluster)."""
    if io == "sync":
        client.close()
        if not cluster:  # RedisCluster.close() disconnects every node's pool itself
            client.connection_pool.disconnect()
        return
    client.aclose()  # Redis.from_pool owns its pool: aclose disconnects it too


__all__ = [
    "ASYNC_POOL_SIZE",
    "async_settings",
    "close_client",
    "cluster_client",
    "plain_client",
    "pool_size",
]
