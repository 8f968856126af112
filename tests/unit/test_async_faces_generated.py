"""The async faces are generated from the sync classes; a stale file fails CI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from praisondb.adapter import DbSessionAdapter
from praisondb.aio import AsyncDbSessionAdapter, AsyncPraisonDB, AsyncSession
from praisondb.aio.faces import AsyncMessages, AsyncSessions, AsyncState, AsyncStateView
from praisondb.core.repositories import Messages, Sessions, State
from praisondb.core.session import Session
from praisondb.core.state_view import StateView
from praisondb.facade import PraisonDB

ROOT = Path(__file__).resolve().parents[2]


def test_generated_async_faces_match_the_sync_classes() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_async_faces.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_public_sync_method_has_an_async_face() -> None:
    pairs = [
        (Sessions, AsyncSessions),
        (Messages, AsyncMessages),
        (State, AsyncState),
        (Session, AsyncSession),
        (DbSessionAdapter, AsyncDbSessionAdapter),
        (PraisonDB, AsyncPraisonDB),
    ]
    # The stores themselves are sync objects: async code reaches them with db.run_sync.
    stores = {"conversations", "state_store", "temp_state"}
    missing = [
        f"{async_cls.__name__}.{name}"
        for sync_cls, async_cls in pairs
        for name in dir(sync_cls)
        if not name.startswith("_") and name not in stores and not hasattr(async_cls, name)
    ]
    view_methods = {"get", "set", "delete", "update", "incr", "entries", "to_dict", "clear"}
    missing += [
        f"AsyncStateView.{n}" for n in sorted(view_methods) if not hasattr(AsyncStateView, n)
    ]
    assert missing == [], f"sync methods without an async face: {missing}"
    assert set(dir(StateView)) >= view_methods
