"""A secured app for the auth tests: two tenants' keys, a revoked key, session tokens.

The app is the real one (``create_app``) over a private SQLite store, driven in-process
by Starlette's TestClient (httpx underneath)."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from praisondb import PraisonDB
from praisondb.codec import to_record
from praisondb.model import SessionInfo
from praisondb.server.app import create_app
from praisondb.server.auth import Authenticator
from praisondb.server.keys import KeyStore

TOKEN_SECRET = "s3cret-for-tests-0123456789abcdef"


@dataclass
class Secured:
    db: PraisonDB
    auth: Authenticator
    client: TestClient
    keys: dict[str, str]

    def as_(self, who: str | None) -> dict[str, str]:
        """Headers for ``who``: a key name, ``"token:<raw token>"``, or None (no header)."""
        if who is None:
            return {}
        credential = who.removeprefix("token:") if who.startswith("token:") else self.keys[who]
        return {"Authorization": f"Bearer {credential}"}

    def create_session(self, who: str, session_id: str) -> Any:
        now = datetime.datetime.now(datetime.timezone.utc)
        body = to_record(SessionInfo(id=session_id, created_at=now, updated_at=now))
        return self.client.post("/sessions", json=body, headers=self.as_(who))


def echo(session: Any, message: str) -> str:
    """A plain agent: answers with what it heard and how long the session is."""
    return f"echo({len(session.history())}): {message}"


def secured_app(tmp_path: Path, **auth_options: Any) -> Iterator[Secured]:
    db = PraisonDB(f"sqlite:///{tmp_path}/server.db", auto_migrate=True)
    store = KeyStore(db)
    keys = {
        "alice": store.create("alice", tenant="acme"),
        "bob": store.create("bob", tenant="globex"),
        "carol": store.create("carol"),  # the default tenant
        "slow": store.create("slow", tenant="acme", rate=2.0),
        "gone": store.create("gone", tenant="acme"),
    }
    store.revoke("gone")
    options = {"token_secret": TOKEN_SECRET, "cache_seconds": 0.0, **auth_options}
    auth = Authenticator(db, **options)
    app = create_app(db, auth=auth, agents={"echo": echo})
    with TestClient(app) as client:
        yield Secured(db, auth, client, keys)
    db.close()
