"""The async face: ``AsyncPraisonDB``, ``AsyncSession``, ``AsyncDbSessionAdapter``.

One core: every method runs the sync implementation through a bridge (bridge.py) over
native async drivers; the face classes are generated from the sync ones (faces.py).
"""

from __future__ import annotations

from .adapter import AsyncDbSessionAdapter
from .facade import AsyncPraisonDB
from .faces import (
    AsyncCheckpoints,
    AsyncLease,
    AsyncMessages,
    AsyncRuns,
    AsyncSession,
    AsyncSessions,
    AsyncState,
    AsyncStateView,
)

__all__ = [
    "AsyncCheckpoints",
    "AsyncDbSessionAdapter",
    "AsyncLease",
    "AsyncMessages",
    "AsyncPraisonDB",
    "AsyncRuns",
    "AsyncSession",
    "AsyncSessions",
    "AsyncState",
    "AsyncStateView",
]
