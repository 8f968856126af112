"""The async faces are the sync methods, bridged: complete, and with the same signatures."""

from __future__ import annotations

import inspect

import pytest

from praisondb.adapter import DbSessionAdapter
from praisondb.aio import AsyncDbSessionAdapter, AsyncPraisonDB, AsyncSession
from praisondb.aio.faces import (
    AsyncCheckpoints,
    AsyncLease,
    AsyncMessages,
    AsyncRuns,
    AsyncSessions,
    AsyncState,
    AsyncStateView,
)
from praisondb.aio.memory import AsyncMemory
from praisondb.core.locks import Lease
from praisondb.core.memory import Memory
from praisondb.core.repositories import Checkpoints, Messages, Runs, Sessions, State
from praisondb.core.session import Session
from praisondb.core.state_view import StateView
from praisondb.facade import PraisonDB
from praisondb.server.remote_session import AsyncRemoteSession, RemoteSession

PAIRS = [
    (Sessions, AsyncSessions),
    (Messages, AsyncMessages),
    (State, AsyncState),
    (Checkpoints, AsyncCheckpoints),
    (Runs, AsyncRuns),
    (Lease, AsyncLease),
    (Session, AsyncSession),
    (DbSessionAdapter, AsyncDbSessionAdapter),
    (PraisonDB, AsyncPraisonDB),
    (Memory, AsyncMemory),
    (RemoteSession, AsyncRemoteSession),
]
STORES = {"conversations", "state_store", "temp_state"}
"""The stores themselves are sync objects: async code reaches them with ``db.run_sync``."""


@pytest.mark.parametrize(("sync", "face"), PAIRS, ids=[f.__name__ for _, f in PAIRS])
def test_every_public_sync_method_has_an_async_face(sync: type, face: type) -> None:
    missing = [
        name
        for name in dir(sync)
        if not name.startswith("_") and name not in STORES and not hasattr(face, name)
    ]
    assert missing == [], f"{face.__name__} lacks {missing}"


def test_state_views_have_every_method_but_the_operators() -> None:
    methods = {n for n in vars(StateView) if not n.startswith("_")} - {"scope"}
    assert methods and all(hasattr(AsyncStateView, n) for n in methods)


@pytest.mark.parametrize(("sync", "face"), PAIRS, ids=[f.__name__ for _, f in PAIRS])
def test_async_methods_take_the_sync_signatures(sync: type, face: type) -> None:
    """``awaited(Sync.method)`` keeps parameters, defaults and docstring by construction;
    this catches a face method written by hand that drifted from its sync twin."""
    compared = 0
    for name in dir(sync):
        ours = getattr(face, name, None)
        theirs = getattr(sync, name, None)
        if name.startswith("_") or not inspect.isfunction(theirs) or ours is None:
            continue
        if not inspect.isfunction(ours):
            continue
        assert inspect.signature(ours) == inspect.signature(theirs) or name in HAND_WRITTEN, name
        assert ours.__doc__ == theirs.__doc__ or name in HAND_WRITTEN, name
        compared += 1
    assert compared > 0


HAND_WRITTEN = {
    "lock",  # Session.lock: returns an AsyncLease (no I/O), takes Session.lock's arguments
    "merge",  # takes an AsyncSession as well as an id
    "session",  # AsyncPraisonDB.session: awaited, returns an AsyncSession
    "memory",  # AsyncPraisonDB.memory: returns an AsyncMemory (no I/O)
    "bind",  # AsyncMemory.bind: returns an AsyncMemory (no I/O)
    "ping",
    "close",  # AsyncPraisonDB/AsyncDbSessionAdapter: close their own async resources
    "metadata",
    "summary",  # properties in sync (they read the store): methods here
    "run_agent",  # awaits an async agent on the loop with the AsyncSession
}
