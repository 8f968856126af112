"""Input checks done once, in front of every store, so backends can trust what they get."""

from __future__ import annotations

import math
import re
from typing import Any

import orjson

from .errors import ValidationError
from .model import ROLES, Message

MAX_ID_LENGTH = 255
MAX_SCOPE_LENGTH = 320
"""A scope is a short prefix plus an id, e.g. ``session:`` + a 255-character session id."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NEEDS_ID = frozenset({"user", "session"})
SCOPE_PATTERN = re.compile(r"^(app|temp|user:.+|session:.+|[a-z][a-z0-9_.-]*(:.+)?)$", re.DOTALL)


def check_id(value: object, what: str = "session id", limit: int = MAX_ID_LENGTH) -> str:
    """Ids are opaque data: any printable text up to 255 characters."""
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be a string, not {type(value).__name__}")
    if not value:
        raise ValidationError(f"{what} must not be empty")
    if len(value) > limit:
        raise ValidationError(f"{what} is {len(value)} characters long; the limit is {limit}")
    if _CONTROL.search(value):
        raise ValidationError(f"{what} must not contain control characters")
    check_text(value, what)
    return value


def check_text(value: str, what: str) -> None:
    """Reject lone surrogates: they cannot be encoded as UTF-8, so no store can keep them."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValidationError(
            f"{what} contains a lone surrogate at position {exc.start}; it is not valid Unicode text"
        ) from None


def check_json(value: Any, what: str) -> None:
    """The value must be JSON data orjson can write (str keys, no lone surrogates).

    NaN and infinities are refused: orjson would silently write them as ``null``.
    """
    try:
        orjson.dumps(value)
    except TypeError as exc:
        raise ValidationError(f"{what} is not JSON data: {exc}") from None
    if not _all_finite(value):
        raise ValidationError(f"{what} contains NaN or infinity, which JSON cannot hold")


def _all_finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_all_finite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(_all_finite(v) for v in value)
    return True


def check_metadata(value: Any, what: str = "metadata") -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationError(f"{what} must be a dict, not {type(value).__name__}")
    check_json(value, what)
    return value


def check_message(message: Message) -> Message:
    check_id(message.session_id)
    check_id(message.id, "message id")
    if message.role not in ROLES:
        raise ValidationError(f"role must be one of {sorted(ROLES)}, not {message.role!r}")
    content = message.content
    if isinstance(content, str):
        check_text(content, "message content")
    elif isinstance(content, list) and all(isinstance(block, dict) for block in content):
        check_json(content, "message content")
    else:
        raise ValidationError("message content must be a str or a list of content-block dicts")
    check_metadata(message.metadata)
    if message.run_id is not None:
        check_id(message.run_id, "run id")
    if message.created_at.tzinfo is None:
        raise ValidationError("created_at must be timezone-aware")
    return message


def check_scope(scope: object) -> str:
    """Scopes are ``app``, ``temp``, ``user:<id>``, ``session:<id>`` or a lowercase name[:<id>]."""
    if not isinstance(scope, str) or not SCOPE_PATTERN.match(scope) or scope in _NEEDS_ID:
        raise ValidationError(
            f"scope {scope!r} is not one of app, temp, user:<id>, session:<id>, or name[:<id>]"
        )
    check_id(scope, "scope", MAX_SCOPE_LENGTH)
    return scope


def check_key(key: object) -> str:
    return check_id(key, "state key")
