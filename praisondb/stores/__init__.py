"""Backend registry: a URL names a ``module:Class`` that is imported only when used.

Third-party backends register a URL scheme in the ``praisondb.backends`` entry-point
group with a ``module:Class`` value whose constructor takes ``(url: StoreURL, **options)``.

For the async face a store class says how it does I/O in ``async_io``:

- ``"driver"``: its constructor also takes ``io="async"`` and then talks through a native
  async driver; the async face runs it in greenlets (see praisondb/aio/bridge.py);
- ``"inline"``: no I/O at all (the memory store);
- ``"thread"`` (the default): blocking I/O; the async face runs it on worker threads.
"""

from __future__ import annotations

import importlib
from typing import Any, Literal

from ..urls import StoreURL, parse_url
from .base import AnalyticsSink, ConversationStore, StateStore


def load_backend_class(url: StoreURL) -> type[Any]:
    module_name, _, class_name = url.backend.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise url.missing_driver(exc) from exc
    cls: type[Any] = getattr(module, class_name)
    return cls


AsyncIO = Literal["driver", "inline", "thread"]


def async_io(url: StoreURL) -> AsyncIO:
    """How the store of ``url`` does I/O (see the module docstring)."""
    mode: AsyncIO = getattr(load_backend_class(url), "async_io", "thread")
    return mode


def open_store(
    url: str | StoreURL, role: str = "conversations", *, io: str = "sync", **options: Any
) -> Any:
    """Open the store ``url`` names; ``io="async"`` on its native async driver."""
    parsed = url if isinstance(url, StoreURL) else parse_url(url, role)
    cls = load_backend_class(parsed)
    if io == "async" and getattr(cls, "async_io", "thread") == "driver":
        return cls(parsed, io="async", **options)
    return cls(parsed, **options)


def open_conversation_store(url: str | StoreURL, **options: Any) -> ConversationStore:
    store: ConversationStore = open_store(url, "conversations", **options)
    return store


def open_state_store(url: str | StoreURL, **options: Any) -> StateStore:
    store: StateStore = open_store(url, "state", **options)
    return store


def open_analytics_sink(url: str | StoreURL, **options: Any) -> AnalyticsSink:
    sink: AnalyticsSink = open_store(url, "analytics", **options)
    return sink


__all__ = [
    "AnalyticsSink",
    "AsyncIO",
    "ConversationStore",
    "StateStore",
    "async_io",
    "load_backend_class",
    "open_analytics_sink",
    "open_conversation_store",
    "open_state_store",
    "open_store",
]
