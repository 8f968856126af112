"""What every part of the Redis store stands on: the client, retries and error wording,
transactions, and the key layout (see :mod:`.store` for the layout itself).

``RedisStore`` sets the attributes in its constructor; its parts (``items``, ``state``)
derive from :class:`RedisCore`, so each calls the one real ``_call``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import redis
import redis.exceptions

from ...errors import BackendUnavailable, ConfigError
from ...retry import Retry, driver_text
from ...urls import StoreURL, redact_text
from .codec import hash_tag

T = TypeVar("T")
SESSION_PARTS = ("info", "msgs", "ids", "runs", "cps", "spans")


class RedisCore:
    """The client and the key layout; no store operation of its own."""

    url: StoreURL
    prefix: str
    session_ttl: int
    cluster: bool
    _client: Any
    _retry: Retry
    _shown: str
    _append: Any
    _put_messages_script: Any
    _delete_messages_script: Any
    _state_set: Any
    _state_delete: Any
    _state_incr: Any

    def _cluster_client(self, driver_url: str, settings: dict[str, Any]) -> Any:
        """RedisCluster connects at once (it reads the slot map), unlike redis.Redis."""
        import redis.cluster

        try:
            return redis.cluster.RedisCluster.from_url(driver_url, **settings)
        except redis.exceptions.RedisClusterException as exc:
            text = driver_text(exc, self.url.secret)
            if "Cluster mode is not enabled" in text:
                raise ConfigError(
                    f"{self.url.redacted} is not a Redis Cluster node; drop cluster=true"
                ) from None
            if "reachable" in text or "cannot be connected" in text:
                raise redis.exceptions.ConnectionError(text) from None  # retried
            raise ConfigError(
                f"cannot use {self.url.redacted} as a Redis Cluster: {text}"
            ) from None
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"bad redis URL {self.url.redacted}: {redact_text(str(exc), self.url.secret)}"
            ) from None

    # -- plumbing -----------------------------------------------------------------
    def _call(self, action: str, fn: Callable[[], T]) -> T:
        try:
            return self._retry.call(fn, transient=_transient, url=self._shown, action=action)
        except redis.exceptions.AuthenticationError as exc:
            raise ConfigError(
                f"redis refused the credentials of {self.url.redacted}: "
                f"{driver_text(exc, self.url.secret)}"
            ) from None
        except BackendUnavailable as exc:
            text = str(exc)
            if redact_text(text, self.url.secret) != text:  # a driver message quoted a secret
                raise BackendUnavailable(
                    redact_text(text, self.url.secret), attempts=exc.attempts
                ) from None
            raise
        except redis.exceptions.RedisError as exc:
            raise BackendUnavailable(
                f"{action} failed: {driver_text(exc, self.url.secret)}",
                url=self.url.redacted,
            ) from None

    def _transaction(self, action: str, body: Callable[[Any], T], *watch: str) -> T:
        """WATCH ``watch``, run ``body`` (reads, then ``pipe.multi()`` and writes), EXEC;
        redis-py re-runs it when a watched key changed underneath. One slot only."""

        def run() -> T:
            result: T = self._client.transaction(body, *watch, value_from_callable=True)
            return result

        return self._call(action, run)

    def _key(self, session_id: str, part: str) -> str:
        return f"{self.prefix}s:{hash_tag(session_id)}:{part}"

    def _session_keys(self, session_id: str) -> list[str]:
        return [self._key(session_id, p) for p in SESSION_PARTS]

    def _idx(self, kind: str, value: str | None = None) -> str:
        return f"{self.prefix}idx:{kind}" + ("" if value is None else f":{value}")

    def ping(self) -> None:
        self._call("ping", self._client.ping)

    def schema_version(self) -> str | None:
        return None

    def close(self) -> None:
        self._client.close()
        if not self.cluster:  # RedisCluster.close() disconnects every node's pool itself
            self._client.connection_pool.disconnect()


def _transient(exc: BaseException) -> bool:
    """Connection trouble, and a cluster that is failing over or moving slots."""
    if isinstance(exc, redis.exceptions.AuthenticationError):
        return False
    return isinstance(
        exc,
        (
            redis.exceptions.ConnectionError,
            redis.exceptions.TimeoutError,
            redis.exceptions.ClusterDownError,
            redis.exceptions.TryAgainError,
        ),
    )
