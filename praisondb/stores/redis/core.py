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
from .aio import NO_CONNECTION, CallGate, ClusterTransactions
from .clients import close_client
from .codec import hash_tag

T = TypeVar("T")
SESSION_PARTS = ("info", "msgs", "ids", "runs", "cps", "spans")
_CLUSTER_UNREACHABLE: type[BaseException] = getattr(
    redis.exceptions, "RedisClusterUnreachableError", redis.exceptions.ConnectionError
)
"""No cluster node answers: redis-py (8.2+) raises this outside ``RedisError``."""


class RedisCore:
    """The client and the key layout; no store operation of its own."""

    url: StoreURL
    prefix: str
    session_ttl: int
    cluster: bool
    _client: Any
    _io: str
    _gate: CallGate | None
    _cluster_tx: ClusterTransactions | None
    _retry: Retry
    _shown: str
    _append: Any
    _put_messages_script: Any
    _delete_messages_script: Any
    _state_set: Any
    _state_delete: Any
    _state_incr: Any

    # -- plumbing -----------------------------------------------------------------
    def _call(self, action: str, fn: Callable[[], T]) -> T:
        if self._gate is not None:
            fn = self._gate.guard(fn)
        try:
            return self._retry.call(fn, transient=_transient, url=self._shown, action=action)
        except redis.exceptions.AuthenticationError as exc:
            raise ConfigError(
                f"redis refused the credentials of {self.url.redacted}: "
                f"{driver_text(exc, self.url.secret)}"
            ) from None
        except BackendUnavailable as exc:
            text = str(exc)
            if NO_CONNECTION in text:  # the async face's pool: every connection stayed busy
                raise BackendUnavailable(
                    f"{action} failed: every pooled connection stayed busy for the timeout; "
                    "raise max_connections in the URL (default 50) or the timeout option",
                    url=self.url.redacted,
                    attempts=exc.attempts,
                    waited=exc.waited,
                ) from None
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
        all again from WATCH when a watched key changed underneath. One slot only.

        Written out rather than ``client.transaction(body)``: the asyncio twin of that
        wants a coroutine as the body, while this loop drives both clients alike."""
        cluster_tx = self._cluster_tx

        def run() -> T:
            if cluster_tx is None:
                pipe = self._client.pipeline(transaction=True)
            else:  # the async face on a cluster: on the slot's primary (see .aio)
                pipe = cluster_tx.pipeline(watch[0])
            try:
                while True:
                    try:
                        pipe.watch(*watch)
                        value = body(pipe)
                        pipe.execute()
                        return value
                    except redis.exceptions.WatchError:
                        continue  # a watched key changed (or the connection was lost)
            except _SLOT_TROUBLE as exc:
                if cluster_tx is None:
                    raise
                cluster_tx.refresh()  # the retry then finds the slot's primary anew
                if isinstance(exc, (redis.exceptions.MovedError, redis.exceptions.AskError)):
                    raise redis.exceptions.TryAgainError(f"slot moved: {exc}") from None
                raise
            finally:
                pipe.reset()  # UNWATCH and hand the connection back, also after an error

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
        if self._cluster_tx is not None:
            self._cluster_tx.close()
        close_client(self._client, self.cluster, self._io)


_SLOT_TROUBLE = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.MovedError,
    redis.exceptions.AskError,
)
"""What a transaction on a cluster node meets when its slot moved or the node failed."""


def _transient(exc: BaseException) -> bool:
    """Connection trouble, and a cluster that is failing over, moving slots or has no
    node answering (redis-py raises that one outside ``RedisError``)."""
    if isinstance(exc, redis.exceptions.AuthenticationError):
        return False
    return isinstance(
        exc,
        (
            redis.exceptions.ConnectionError,
            redis.exceptions.TimeoutError,
            redis.exceptions.ClusterDownError,
            redis.exceptions.TryAgainError,
            _CLUSTER_UNREACHABLE,
        ),
    )
