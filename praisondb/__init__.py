"""praisondb: one storage-agnostic data layer for AI-agent sessions.

Only the public API lives here; drivers are imported when a URL needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from .errors import (
    ArchiveError,
    BackendUnavailable,
    ConfigError,
    Conflict,
    ConflictAbort,
    DatabaseClosed,
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

if _TYPE_CHECKING:
    from .adapter import DbSessionAdapter
    from .agents.managed import CustomTool, ManagedAgent, ManagedConfig
    from .aio import AsyncDbSessionAdapter, AsyncPraisonDB, AsyncSession
    from .aio.memory import AsyncMemory
    from .core.memory import Memory
    from .core.session import Session
    from .facade import PraisonDB
    from .model import (
        Checkpoint,
        Event,
        MemoryItem,
        Message,
        Page,
        Run,
        SessionInfo,
        Span,
        StateEntry,
    )
    from .server.remote_session import AsyncRemoteSession, RemoteSession

__version__ = "0.1.0"

__all__ = [
    "ArchiveError",
    "AsyncDbSessionAdapter",
    "AsyncMemory",
    "AsyncPraisonDB",
    "AsyncRemoteSession",
    "AsyncSession",
    "BackendUnavailable",
    "Checkpoint",
    "ConfigError",
    "Conflict",
    "ConflictAbort",
    "CustomTool",
    "DatabaseClosed",
    "DbSessionAdapter",
    "Event",
    "InvalidToken",
    "LeaseLost",
    "LockTimeout",
    "ManagedAgent",
    "ManagedConfig",
    "Memory",
    "MemoryItem",
    "Message",
    "NotFound",
    "Page",
    "PraisonDB",
    "PraisonDBError",
    "RemoteSession",
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


_LAZY = {
    "AsyncDbSessionAdapter": ".aio",
    "AsyncMemory": ".aio.memory",
    "AsyncPraisonDB": ".aio",
    "AsyncRemoteSession": ".server.remote_session",
    "AsyncSession": ".aio",
    "Checkpoint": ".model",
    "CustomTool": ".agents.managed",
    "DbSessionAdapter": ".adapter",
    "Event": ".model",
    "ManagedAgent": ".agents.managed",
    "ManagedConfig": ".agents.managed",
    "Memory": ".core.memory",
    "MemoryItem": ".model",
    "Message": ".model",
    "Page": ".model",
    "PraisonDB": ".facade",
    "RemoteSession": ".server.remote_session",
    "Run": ".model",
    "Session": ".core.session",
    "SessionInfo": ".model",
    "Span": ".model",
    "StateEntry": ".model",
}
"""Loaded on first use, so ``import praisondb`` (and the CLI's ``--help``) stays light."""


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


def __getattr__(name: str) -> _Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value
