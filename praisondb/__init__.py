"""praisondb: one storage-agnostic data layer for AI-agent sessions.

Only the public API lives here; drivers are imported when a URL needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from .adapter import DbSessionAdapter
from .core.session import Session
from .errors import (
    ArchiveError,
    BackendUnavailable,
    ConfigError,
    Conflict,
    ConflictAbort,
    InvalidToken,
    LeaseLost,
    LockTimeout,
    NotFound,
    PraisonDBError,
    SchemaOutOfDate,
    StorageFull,
    TokenExpired,
    ToolCallLimitExceeded,
    ValidationError,
)
from .facade import PraisonDB
from .model import Checkpoint, Event, Message, Page, Run, SessionInfo, Span, StateEntry

if _TYPE_CHECKING:
    from .agents.managed import ManagedAgent, ManagedConfig

__version__ = "0.1.0"

__all__ = [
    "ArchiveError",
    "BackendUnavailable",
    "Checkpoint",
    "ConfigError",
    "Conflict",
    "ConflictAbort",
    "CustomTool",
    "DbSessionAdapter",
    "Event",
    "InvalidToken",
    "LeaseLost",
    "LockTimeout",
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
    "TokenExpired",
    "ToolCallLimitExceeded",
    "ValidationError",
    "__version__",
]


_LAZY = ("CustomTool", "ManagedAgent", "ManagedConfig")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


def __getattr__(name: str) -> _Any:
    """ManagedAgent and its parts load on first use, keeping ``import praisondb`` light."""
    if name in _LAZY:
        from .agents import managed

        return getattr(managed, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
