"""Store options arrive as keywords or as URL query text; these read them one way."""

from __future__ import annotations

from typing import Any

from .errors import ConfigError

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def as_bool(name: str, value: Any) -> bool:
    """``True``/``False`` or their usual spellings in a URL (``?fsync=off``)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"option {name} must be true or false, not {value!r}")


def as_seconds(name: str, value: Any) -> float:
    """A non-negative number of seconds."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"option {name} must be a number of seconds, not {value!r}") from None
    if number < 0:
        raise ConfigError(f"option {name} must not be negative, not {value!r}")
    return number
