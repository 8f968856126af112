"""Options of the ClickHouse analytics sink: parsing, checking, and the default spool place.

Kept apart from the sink so the option table reads as one list and the sink module
keeps to delivering events.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigError
from ..options import as_bool
from ..urls import StoreURL

MEMORY_PATHS = frozenset({"", "memory", ":memory:"})
"""``chdb://`` paths that mean the in-memory engine (no directory)."""

_OPTION_TYPES: dict[str, Callable[[Any], Any]] = {
    "database": str,
    "cluster": str,
    "ttl_days": int,
    "spool_dir": str,
    "batch_size": int,
    "flush_interval": float,
    "max_buffer": int,
    "block_timeout": float,
    "retry_interval": float,
    "connect_timeout": float,
    "send_receive_timeout": float,
}
_BOOL_OPTIONS = {"auto_migrate", "verify", "journal"}


def parse_options(url: StoreURL, options: Mapping[str, Any]) -> dict[str, Any]:
    """URL query options, overridden by keyword options; unknown names are ConfigErrors."""
    merged: dict[str, Any] = {**url.options, **options}
    parsed: dict[str, Any] = {}
    for name, value in merged.items():
        if name in _BOOL_OPTIONS:
            parsed[name] = None if value is None else as_bool(name, value)
        elif name in _OPTION_TYPES:
            try:
                parsed[name] = None if value is None else _OPTION_TYPES[name](value)
            except (TypeError, ValueError):
                raise ConfigError(f"option {name} has an invalid value {value!r}") from None
        else:
            known = ", ".join(sorted([*_OPTION_TYPES, *_BOOL_OPTIONS]))
            raise ConfigError(f"unknown analytics option {name!r}; known: {known}")
    for name in ("batch_size", "max_buffer"):
        if name in parsed and parsed[name] is not None and parsed[name] < 1:
            raise ConfigError(f"option {name} must be at least 1")
    for name in ("flush_interval", "block_timeout", "retry_interval", "connect_timeout"):
        value = parsed.get(name)
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise ConfigError(f"option {name} must be a non-negative number of seconds")
    return parsed


def default_spool_dir(url: StoreURL, database: str) -> Path:
    """Beside the chdb directory, else in the user's cache directory (one per server)."""
    if url.scheme == "chdb" and url.path not in MEMORY_PATHS:
        path = Path(url.path).expanduser().resolve()
        return path.parent / f"{path.name}-spool"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    parts = urlsplit(url.secret)
    where = f"{parts.hostname or 'memory'}_{parts.port or ''}_{database}"
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in where)
    return cache / "praisondb" / "analytics-spool" / safe
