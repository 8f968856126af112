"""Where a transfer reads from and writes to: URLs, store objects or ``PraisonDB`` facades.

Also the two safety checks that must happen before anything is written: a store is
never copied onto itself, and the resumable cursor lives in a reserved state scope
of the *target*, so it moves with the data it describes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import orjson

from ..errors import ConfigError
from ..facade import PraisonDB
from ..stores import open_conversation_store, open_state_store
from ..stores.base import ConversationStore, StateStore
from ..urls import StoreURL, parse_url

CURSOR_SCOPE_PREFIX = "praisondb.transfer"
"""State scopes starting with this belong to the transfer machinery; never copied or verified."""

_DEFAULT_PORTS = {
    "postgresql": 5432,
    "mysql": 3306,
    "redis": 6379,
    "rediss": 6379,
    "mongodb": 27017,
}
_LOOPBACK = {"localhost", "127.0.0.1", "::1", "[::1]"}
_TUNING = (
    "pool",
    "echo",
    "auto_migrate",
    "connect_timeout",
    "timeout",
    "ssl",
    "application_name",
    "lock_timeout",
    "fsync",
    "synchronous",
    "busy_timeout",
    "retry",
    "max_overflow",
)


@dataclass
class Endpoint:
    """One side of a transfer: its conversation store, its state store and how to name it."""

    conversations: ConversationStore
    state: StateStore | None
    url: StoreURL
    owned: list[Any] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.url.redacted

    def close(self) -> None:
        closed: list[Any] = []
        for store in self.owned:
            if not any(store is c for c in closed):
                store.close()
                closed.append(store)


def _is_store(value: Any) -> bool:
    return hasattr(value, "list_sessions") and hasattr(value, "put_messages")


@contextmanager
def open_endpoint(value: Any, options: dict[str, Any] | None = None) -> Iterator[Endpoint]:
    """Open (and afterwards close) what the caller named; objects passed in stay open."""
    endpoint = _resolve(value, options or {})
    try:
        yield endpoint
    finally:
        endpoint.close()


def _resolve(value: Any, options: dict[str, Any]) -> Endpoint:
    if isinstance(value, PraisonDB):
        return Endpoint(value.conversations, value.state_store, value.database_url)
    if _is_store(value):
        return Endpoint(value, value if isinstance(value, StateStore) else None, value.url)
    if isinstance(value, (str, os.PathLike, StoreURL)):
        url = value if isinstance(value, StoreURL) else parse_url(value)
        store = open_conversation_store(url, **options)
        state: StateStore | None
        if isinstance(store, StateStore):
            state = store
            owned: list[Any] = [store]
        else:
            state = open_state_store(url, **options)
            owned = [store, state]
        return Endpoint(store, state, url, owned)
    raise ConfigError(
        f"cannot transfer from/to a {type(value).__name__}; pass a URL, a store or a PraisonDB"
    )


def store_identity(url: StoreURL) -> tuple[Any, ...] | None:
    """A normalised form of a URL that names the same data; None for per-process stores.

    ``memory://`` and ``sqlite://`` (in-memory) are only equal to themselves as objects.
    """
    family = url.family
    if family == "memory" or (family == "sqlite" and url.path in ("", ":memory:")):
        return None
    if family in ("sqlite", "json", "chdb"):
        return (family, os.path.realpath(Path(url.path).expanduser()))
    parts = urlsplit(url.secret)
    host = (parts.hostname or "").lower()
    if host in _LOOPBACK:
        host = "localhost"
    try:
        port = parts.port or _DEFAULT_PORTS.get(family)
    except ValueError:
        port = None
    query = tuple(
        sorted(
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if not k.lower().startswith(_TUNING)
        )
    )
    path = unquote(parts.path).rstrip("/") or ("/0" if family == "redis" else "")
    return (family, unquote(parts.username or ""), host, port, path, query)


def refuse_self_copy(source: Endpoint, target: Endpoint) -> None:
    """Copying a store onto itself would read what it writes: refuse before any write."""
    same = source.conversations is target.conversations
    if not same:
        identity = store_identity(source.url)
        same = identity is not None and identity == store_identity(target.url)
    if same:
        raise ConfigError(
            f"source and target are the same store ({source.label}); "
            "refusing to copy a store onto itself"
        )


def same_state_store(source: Endpoint, target: Endpoint) -> bool:
    if source.state is None or target.state is None:
        return False
    if source.state is target.state:
        return True
    a, b = store_identity(source.state.url), store_identity(target.state.url)
    return a is not None and a == b


def is_reserved_scope(scope: str) -> bool:
    return scope == CURSOR_SCOPE_PREFIX or scope.startswith(CURSOR_SCOPE_PREFIX + ":")


def cursor_scope(source: Endpoint, selection: dict[str, Any]) -> str:
    """``praisondb.transfer:<hash>`` of the source and the filters (passwords left out)."""
    identity = store_identity(source.url) or (
        "object",
        source.url.redacted,
        id(source.conversations),
    )
    raw = orjson.dumps([repr(identity), selection], option=orjson.OPT_SORT_KEYS)
    return f"{CURSOR_SCOPE_PREFIX}:{hashlib.sha256(raw).hexdigest()[:24]}"
