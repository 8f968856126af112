"""Backend registry: a URL names a ``module:Class`` that is imported only when used.

Third-party backends register a URL scheme in the ``praisondb.backends`` entry-point
group with a ``module:Class`` value whose constructor takes ``(url: StoreURL, **options)``.
"""

from __future__ import annotations

import importlib
from typing import Any

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


def open_store(url: str | StoreURL, role: str = "conversations", **options: Any) -> Any:
    parsed = url if isinstance(url, StoreURL) else parse_url(url, role)
    return load_backend_class(parsed)(parsed, **options)


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
    "ConversationStore",
    "StateStore",
    "load_backend_class",
    "open_analytics_sink",
    "open_conversation_store",
    "open_state_store",
    "open_store",
]
