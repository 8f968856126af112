"""Store options arrive as keywords or as URL query text; these read them one way.

Each store (and the analytics sink) declares its options once, as an :class:`OptionTable`
of :class:`Option` rows: the name, how a value is read (``?fsync=off`` and
``fsync=False`` alike), the default, the rule it must meet and what it is for. The table
merges the URL's query options with the keyword options (keywords win), refuses unknown
names with the accepted ones listed, and words a bad value with the option and the
(password-free) URL, so every store reports option mistakes the same way.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from .errors import ConfigError
from .urls import StoreURL

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})

ABSENT: Final[Any] = type("Absent", (), {"__repr__": lambda _self: "ABSENT"})()
"""An :attr:`Option.default` meaning: not given, left out of the table's result."""

Reader = Callable[[str, Any], Any]
"""``(name, value) -> value``: turns keyword or URL text into the option's type; raises
ConfigError (or TypeError/ValueError) naming the option for a value it cannot read."""


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
    number = as_float(name, value, what="a number of seconds")
    if number < 0:
        raise ConfigError(f"option {name} must not be negative, not {value!r}")
    return number


def as_float(name: str, value: Any, what: str = "a number") -> float:
    """A finite or infinite float from a number or its text."""
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"option {name} must be {what}, not {value!r}") from None


def as_int(name: str, value: Any) -> int:
    """A whole number from an int or its text (``True`` and ``1.5`` are refused)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ConfigError(f"option {name} must be a whole number, not {value!r}")


def as_text(_name: str, value: Any) -> str:
    """Any value, as text."""
    return str(value)


def one_of(*choices: str) -> Reader:
    """A reader of one of ``choices``, compared case-insensitively, returned upper-case."""

    def read(name: str, value: Any) -> str:
        text = str(value).upper()
        if text not in choices:
            raise ConfigError(f"{name} must be one of {sorted(choices)}, not {text!r}")
        return text

    return read


def blank_as(read: Reader, empty: Any) -> Reader:
    """``read``, except that an empty value (``?session_ttl=``, ``0``, ``False``) is ``empty``."""
    return lambda name, value: read(name, value or empty)


def at_least(low: float) -> Callable[[Any], bool]:
    """A check: the value is ``low`` or more."""
    return lambda value: value >= low


def positive(value: Any) -> bool:
    """A check: the value is more than 0."""
    return bool(value > 0)


def seconds(value: Any) -> bool:
    """A check: a finite, non-negative number of seconds."""
    return math.isfinite(value) and value >= 0


@dataclass(frozen=True)
class Option:
    """One option a store accepts: its name, reader, default, rule and purpose."""

    name: str
    read: Reader = as_text
    default: Any = None
    """The value when not given (or given as None); :data:`ABSENT` leaves it out."""
    check: Callable[[Any], bool] | None = None
    rule: str = ""
    """What ``check`` demands, for the error: "must be at least 1"."""
    doc: str = ""
    same_as: str | None = None
    """Not given: the value of this (earlier) option instead of ``default``."""
    none_is_value: bool = False
    """A keyword ``None`` is read like a value (else it means "not given")."""


class OptionTable:
    """The options of one store, read from a URL's query and keyword arguments alike."""

    def __init__(self, *options: Option, driver_query: bool = False) -> None:
        """``driver_query``: URL query names not in the table belong to the driver (they
        are left in the URL); otherwise they are refused like unknown keywords."""
        self.options = options
        self.names = frozenset(o.name for o in options)
        self.driver_query = driver_query

    def read(self, url: StoreURL, keywords: Mapping[str, Any]) -> dict[str, Any]:
        """Every option's value: keywords over URL query over defaults, read and checked."""
        given = {k: v for k, v in url.options.items() if k in self.names or not self.driver_query}
        self._refuse_unknown(url, [*keywords, *given])
        given.update(keywords)
        values: dict[str, Any] = {}
        for option in self.options:
            value = given.get(option.name)
            if value is not None or (option.none_is_value and option.name in given):
                values[option.name] = self._read_one(url, option, value)
            elif option.same_as in values:
                values[option.name] = values[option.same_as]
            elif option.default is not ABSENT:
                values[option.name] = option.default
        return values

    def _refuse_unknown(self, url: StoreURL, names: list[str]) -> None:
        unknown = sorted(set(names) - self.names)
        if unknown:
            raise ConfigError(
                f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                f"for {url.redacted}; accepted: {', '.join(sorted(self.names))}"
            )

    @staticmethod
    def _read_one(url: StoreURL, option: Option, value: Any) -> Any:
        try:
            result = option.read(option.name, value)
        except ConfigError as exc:
            raise ConfigError(f"{exc} (for {url.redacted})") from None
        except (TypeError, ValueError):
            raise ConfigError(
                f"option {option.name} has an invalid value {value!r} (for {url.redacted})"
            ) from None
        if option.check is not None and not option.check(result):
            raise ConfigError(
                f"option {option.name} {option.rule}, not {value!r} (for {url.redacted})"
            )
        return result


AUTO_MIGRATE = Option(
    "auto_migrate", as_bool, False, doc="create or upgrade the schema on open (if there is one)"
)
"""Accepted by every store, so one set of options can open any of them."""
RETRY_ATTEMPTS = Option(
    "retry_attempts", as_int, 3, at_least(1), "must be >= 1", "tries on connection errors"
)
