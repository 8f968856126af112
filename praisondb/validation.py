"""Input checks done once, in front of every store, so backends can trust what they get."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson

from .errors import ValidationError
from .model import ROLES, MemoryItem, Message

MAX_ID_LENGTH = 255
MAX_SCOPE_LENGTH = 320
"""A scope is a short prefix plus an id, e.g. ``session:`` + a 255-character session id."""
CONTROL_CHARACTERS = r"\x00-\x1f\x7f"
"""The characters no id, scope or key may hold, as a regex class body (the OpenAPI
document's id patterns are built from it too: praisondb/server/openapi_types.py)."""
_CONTROL = re.compile(f"[{CONTROL_CHARACTERS}]")
SCOPES_NEEDING_ID = frozenset({"user", "session"})
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


INT_MIN = -(2**63)
INT_MAX = 2**63 - 1
"""JSON integers must fit in signed 64 bits: the widest integer every backend keeps exactly."""
MAX_DEPTH = 30
"""How deeply dicts and lists may nest in one value (MariaDB refuses JSON 32 levels deep;
one level is left spare)."""
_SCALARS = (str, int, float, bool, type(None))


class _Bad(Exception):
    """A value that is not JSON data; the path to it is collected while unwinding."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: list[str] = []


def whole(value: object) -> object:
    """A whole float (``600.0``) as the int it equals, anything else as it is: JSON has one
    number type, and JSON Schema (so the server's OpenAPI document) calls 600.0 an integer.
    For numbers read from a request body; the Python API stays strict."""
    if type(value) is float and value.is_integer():
        return int(value)
    return value


def check_int(value: object, what: str, minimum: int = INT_MIN, maximum: int = INT_MAX) -> int:
    """An ``int`` (never a bool) within ``minimum``..``maximum``."""
    if type(value) is not int:
        raise ValidationError(
            f"{what} must be an integer from {minimum} to {maximum}, not {type(value).__name__}"
        )
    if not minimum <= value <= maximum:
        raise ValidationError(f"{what} must be an integer from {minimum} to {maximum}, not {value}")
    return value


MAX_TTL_SECONDS = 36_525 * 86_400
"""The longest TTL, 100 years: longer is surely a unit mistake (and overflows some stores)."""


def check_ttl(ttl: object, what: str = "ttl") -> float:
    """Seconds (int or float, not bool) or a timedelta, more than 0 and at most 100 years."""
    if isinstance(ttl, timedelta):
        seconds = ttl.total_seconds()
    elif isinstance(ttl, int) and not isinstance(ttl, bool):
        seconds = float(min(ttl, MAX_TTL_SECONDS + 1))  # a huge int would overflow a float
    elif isinstance(ttl, float):
        seconds = ttl
    else:
        raise ValidationError(
            f"{what} must be seconds (int or float) or a timedelta, not {type(ttl).__name__}"
        )
    if not 0 < seconds <= MAX_TTL_SECONDS:  # also refuses NaN
        raise ValidationError(
            f"{what} must be more than 0 and at most {MAX_TTL_SECONDS} seconds (100 years), "
            f"not {ttl!r}"
        )
    return seconds


def check_json(value: Any, what: str) -> Any:
    """``value`` if it is JSON data every backend stores exactly, else ValidationError.

    JSON data is: dict with str keys, list, str (no lone surrogates), int in signed 64
    bits, finite float, bool, None; at most ``MAX_DEPTH`` containers deep. Anything
    else (tuple, set, bytes, datetime, UUID, Decimal, Enum, numpy scalars, subclasses
    of str/int/float) is refused, naming where it sits, rather than turned into
    something else by a serialiser. ``-0.0`` becomes ``0.0`` (PostgreSQL's jsonb has no
    negative zero), so the value returned may be a normalised copy: store that one.
    """
    try:
        return _walk(value, 0)
    except _Bad as bad:
        path = what + "".join(reversed(bad.path))
        raise ValidationError(f"{path} {bad.reason}") from None


def _walk(value: Any, depth: int) -> Any:
    kind = type(value)
    if kind is str:
        if not value.isascii():
            _check_unicode(value)
        return value
    if kind is int:
        if not INT_MIN <= value <= INT_MAX:
            raise _Bad(f"is {value}: JSON integers must be from {INT_MIN} to {INT_MAX} (64 bits)")
        return value
    if kind is float:
        if not math.isfinite(value):
            raise _Bad(f"is {value}: NaN and infinity are not JSON numbers")
        if value == 0.0 and math.copysign(1.0, value) < 0:
            return 0.0  # -0.0: PostgreSQL's jsonb cannot keep the sign
        return value
    if kind is bool or value is None:
        return value
    if kind is dict or (isinstance(value, dict) and not isinstance(value, _SCALARS)):
        return _walk_dict(value, depth + 1)
    if kind is list or (isinstance(value, list) and not isinstance(value, _SCALARS)):
        return _walk_list(value, depth + 1)
    hint = " (use a list)" if isinstance(value, (tuple, set, frozenset)) else ""
    raise _Bad(f"is a {type(value).__name__}, which is not JSON data{hint}")


def _walk_dict(value: dict[Any, Any], depth: int) -> dict[str, Any]:
    if depth > MAX_DEPTH:
        raise _Bad(f"nests more than {MAX_DEPTH} dicts and lists deep")
    copy: dict[str, Any] | None = None
    for key, item in value.items():
        try:
            if type(key) is not str:
                raise _Bad(f"has a key of type {type(key).__name__}; JSON keys are strings")
            if not key.isascii():
                _check_unicode(key)
            new = _walk(item, depth)
        except _Bad as bad:
            bad.path.append(f"[{key!r}]")
            raise
        if new is not item:
            if copy is None:
                copy = dict(value)
            copy[key] = new
    return value if copy is None else copy


def _walk_list(value: list[Any], depth: int) -> list[Any]:
    if depth > MAX_DEPTH:
        raise _Bad(f"nests more than {MAX_DEPTH} dicts and lists deep")
    copy: list[Any] | None = None
    for index, item in enumerate(value):
        try:
            new = _walk(item, depth)
        except _Bad as bad:
            bad.path.append(f"[{index}]")
            raise
        if new is not item:
            if copy is None:
                copy = list(value)
            copy[index] = new
    return value if copy is None else copy


def _check_unicode(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _Bad(
            f"holds a lone surrogate at position {exc.start}; it is not valid Unicode text"
        ) from None


def check_metadata(value: Any, what: str = "metadata") -> dict[str, Any]:
    """A dict of JSON data (None is ``{}``), normalised as :func:`check_json` does."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationError(f"{what} must be a dict, not {type(value).__name__}")
    checked: dict[str, Any] = check_json(value, what)
    return checked


def check_message(message: Message) -> Message:
    """Check every field; content and metadata are replaced by their normalised form."""
    check_id(message.session_id)
    check_id(message.id, "message id")
    if type(message.role) is not str or message.role not in ROLES:
        raise ValidationError(f"role must be one of {sorted(ROLES)}, not {message.role!r}")
    content = message.content
    if isinstance(content, str):
        if type(content) is not str:
            raise ValidationError(
                f"message content must be a str, not {type(content).__name__} (a str subclass)"
            )
        check_text(content, "message content")
    elif type(content) is list and all(type(block) is dict for block in content):
        message.content = check_json(content, "message content")
    else:
        raise ValidationError("message content must be a str or a list of content-block dicts")
    message.metadata = check_metadata(message.metadata)
    if message.run_id is not None:
        check_id(message.run_id, "run id")
    if not isinstance(message.created_at, datetime):
        raise ValidationError(
            f"created_at must be a timezone-aware datetime, not {type(message.created_at).__name__}"
        )
    if message.created_at.tzinfo is None:
        raise ValidationError("created_at must be timezone-aware")
    return message


def check_scope(scope: object) -> str:
    """Scopes are ``app``, ``temp``, ``user:<id>``, ``session:<id>`` or a lowercase name[:<id>]."""
    if not isinstance(scope, str) or not SCOPE_PATTERN.match(scope) or scope in SCOPES_NEEDING_ID:
        raise ValidationError(
            f"scope {scope!r} is not one of app, temp, user:<id>, session:<id>, or name[:<id>]"
        )
    check_id(scope, "scope", MAX_SCOPE_LENGTH)
    return scope


def check_key(key: object) -> str:
    return check_id(key, "state key")


def incremented(scope: str, key: str, current: Any, amount: int) -> int:
    """``current + amount`` for ``incr``: a ValidationError when ``current`` is not an
    integer or the sum leaves 64 bits."""
    if not isinstance(current, int) or isinstance(current, bool):
        raise ValidationError(f"state {scope}/{key} holds {type(current).__name__}, not an integer")
    if not INT_MIN <= current + amount <= INT_MAX:
        raise incr_overflow(scope, key, current, amount)
    return current + amount


def incr_overflow(scope: str, key: str, current: int, amount: int) -> ValidationError:
    """What ``incr`` raises, leaving the value as it was, when the sum leaves 64 bits."""
    return ValidationError(
        f"state {scope}/{key}: {current} + {amount} is outside {INT_MIN}..{INT_MAX}, "
        "the range of a JSON integer (signed 64 bits); the value is unchanged"
    )


def coerce_json(value: Any) -> Any:
    """``value`` made into JSON data that passes :func:`check_json`, for hooks that must
    never refuse what an agent framework hands them: what JSON cannot hold becomes
    text (its ``str()``; datetimes, UUIDs, Enums and dataclasses as orjson spells them),
    lone surrogates become U+FFFD, tuples and sets become lists."""
    try:
        return check_json(value, "value")
    except ValidationError:
        return _coerce(value, 0)


def _coerce(value: Any, depth: int) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if type(value) is int:
        return value if INT_MIN <= value <= INT_MAX else str(value)
    if type(value) is float:
        return _walk(value, 0) if math.isfinite(value) else str(value)
    if type(value) is str:
        return _safe_text(value)
    if depth >= MAX_DEPTH:
        return _safe_text(str(value))
    if isinstance(value, dict):
        return {_safe_text(str(k)): _coerce(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_coerce(v, depth + 1) for v in value]
    try:  # datetime, UUID, Enum, dataclass...: orjson's spelling, then made safe
        spelled = orjson.loads(orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS))
    except (TypeError, orjson.JSONEncodeError):
        return _safe_text(str(value))
    if isinstance(spelled, str):
        return _safe_text(spelled)
    return _coerce(spelled, depth)


def _safe_text(text: str) -> str:
    """Lone surrogates replaced by U+FFFD (a valid pair is joined into its character)."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


# -- long-term memory ------------------------------------------------------------------

MAX_MEMORY_TEXT = 16_000
"""Characters in one memory (at most 64,000 bytes of UTF-8: fits every store's text column)."""
MAX_DIMENSIONS = 16_384
"""Numbers in one embedding vector."""


def check_unit(value: object, what: str) -> float:
    """A number (not a bool) in 0..1."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(f"{what} must be a number in 0..1, not {type(value).__name__}")
    number = float(value)
    if not 0.0 <= number <= 1.0:  # NaN fails too
        raise ValidationError(f"{what} must be in 0..1, not {number!r}")
    return number


def check_vector(value: object) -> list[float]:
    """What an ``embed`` function returned, as a list of finite floats."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ValidationError(
            f"embed must return a sequence of numbers, not {type(value).__name__}"
        )
    if not 0 < len(value) <= MAX_DIMENSIONS:
        raise ValidationError(
            f"embed returned {len(value)} numbers; a vector has 1..{MAX_DIMENSIONS}"
        )
    vector: list[float] = []
    for number in value:
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise ValidationError(
                f"embed must return numbers only, not {type(number).__name__}: fix the "
                "function passed as db.memory(embed=...)"
            )
        if not math.isfinite(number):
            raise ValidationError("embed returned NaN or infinity; vectors must be finite")
        vector.append(float(number))
    return vector


def check_memory_text(text: object) -> str:
    """One memory's text: non-blank, no NUL, at most MAX_MEMORY_TEXT characters."""
    if not isinstance(text, str):
        raise ValidationError(f"memory text must be a string, not {type(text).__name__}")
    if not text.strip():
        raise ValidationError("memory text must not be empty")
    if len(text) > MAX_MEMORY_TEXT:
        raise ValidationError(
            f"memory text is {len(text)} characters long; the limit is {MAX_MEMORY_TEXT}: "
            "keep a memory to one fact"
        )
    if "\x00" in text:
        raise ValidationError("memory text must not contain NUL characters")
    check_text(text, "memory text")
    return text


def check_memory(item: MemoryItem) -> MemoryItem:
    """Every field of a memory from outside (an import, a copy); metadata normalised."""
    if not isinstance(item, MemoryItem):
        raise ValidationError(f"expected a MemoryItem, not {type(item).__name__}")
    check_memory_text(item.text)
    if item.scope not in ("user", "agent", "app"):
        raise ValidationError(f"memory scope must be user, agent or app, not {item.scope!r}")
    check_id(item.owner, f"{item.scope} id")
    check_id(item.id, "memory id")
    for name in ("importance", "relevance", "quality"):
        check_unit(getattr(item, name), name)
    item.metadata = check_metadata(item.metadata)
    if item.embedding is not None:
        item.embedding = check_vector(item.embedding)
    if not isinstance(item.created_at, datetime) or item.created_at.tzinfo is None:
        raise ValidationError("memory created_at must be a timezone-aware datetime")
    return item
