"""praisondb: one storage-agnostic data layer for AI-agent sessions.

Only the public API lives here; drivers are imported when a URL needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from .adapter import DbSessionAdapter
from .errors import (
    BackendUnavailable,
    ConfigError,
    Conflict,
    NotFound,
    PraisonDBError,
    SchemaOutOfDate,
    StorageFull,
    ValidationError,
)
from .facade import PraisonDB
from .model import Checkpoint, Event, Message, Page, Run, SessionInfo, Span, StateEntry
from .session import Session

if _TYPE_CHECKING:
    from .agents.managed import ManagedAgent, ManagedConfig

__version__ = "0.1.0"

__all__ = [
    "BackendUnavailable",
    "Checkpoint",
    "ConfigError",
    "Conflict",
    "CustomTool",
    "DbSessionAdapter",
    "Event",
    "ManagedAgent",
    "ManagedConfig",
    "Message",
    "NotFound",
    "Page",
    "PraisonDB",
    "PraisonDBError",
    "Run",
    "SchemaOutOfDate",
    "Session",
    "SessionInfo",
    "Span",
    "StateEntry",
    "StorageFull",
    "ToolCallLimitExceeded",
    "ValidationError",
    "__version__",
]


_LAZY = ("CustomTool", "ManagedAgent", "ManagedConfig", "ToolCallLimitExceeded")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


def __getattr__(name: str) -> _Any:
    """ManagedAgent and its parts load on first use, keeping ``import praisondb`` light."""
    if name in _LAZY:
        from .agents import managed

        return getattr(managed, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
