"""How ADK's names become praisondb ids and key prefixes (see praisondb.integrations.adk).

Kept apart from the service so it imports no ADK: a name praisondb refuses, or one that
could be mistaken for a mapped one, is stored as ``adk~`` + SHA-256.
"""

from __future__ import annotations

import hashlib
import re

from ..errors import ValidationError
from ..validation import check_id

MAPPED_PREFIX = "adk~"
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")


def _digest(*parts: str) -> str:
    joined = "\x00".join(parts).encode("utf-8", "surrogatepass")
    return MAPPED_PREFIX + hashlib.sha256(joined).hexdigest()


def label(value: str) -> str:
    """The praisondb id for an ADK user id or app name: itself when praisondb accepts it
    (and it does not start with ``adk~``), else ``adk~`` + its SHA-256."""
    try:
        check_id(value)
    except ValidationError:
        return _digest(value)
    return _digest(value) if value.startswith(MAPPED_PREFIX) else value


def storage_ids(app_name: str, user_id: str, session_id: str) -> list[str]:
    """Where an ADK session may be stored, in the order they are tried: its own id (when
    praisondb accepts it), then ``adk~`` + SHA-256 of app, user and id."""
    mapped = _digest(app_name, user_id, session_id)
    return [mapped] if label(session_id) != session_id else [session_id, mapped]


def namespace(app_name: str) -> str:
    """The prefix of an app's ``app:``/``user:`` keys (an unusual name is hashed, so
    ``/`` never appears in it)."""
    if _PLAIN_NAME.fullmatch(app_name):
        return app_name + "/"
    return _digest(app_name)[:36] + "/"


__all__ = ["MAPPED_PREFIX", "label", "namespace", "storage_ids"]
