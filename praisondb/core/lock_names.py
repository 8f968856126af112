"""Where a session's lock lives in state, shared by the lock and by session deletion."""

from __future__ import annotations

import hashlib

LOCK_SCOPE = "lock"


def session_lock_name(session_id: str) -> str:
    """The lock key of a session; very long ids are hashed to fit the 255-character key."""
    name = f"session:{session_id}"
    if len(name) <= 255:
        return name
    return "session#" + hashlib.sha256(session_id.encode("utf-8")).hexdigest()
