"""Options of the ClickHouse analytics sink: parsing, checking, and the default spool place.

Kept apart from the sink so the option table reads as one list and the sink module
keeps to delivering events.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..options import Option, OptionTable, as_bool, as_float, as_int, as_text, at_least, seconds
from ..urls import StoreURL

MEMORY_PATHS = frozenset({"", "memory", ":memory:"})
"""``chdb://`` paths that mean the in-memory engine (no directory)."""

_AT_LEAST_1 = "must be at least 1"
_SECONDS = "must be a non-negative number of seconds"

OPTIONS = OptionTable(
    Option("database", as_text, doc="else the URL path, else praisondb"),
    Option("cluster", as_text, doc="ON CLUSTER name for the DDL"),
    Option("ttl_days", as_int, doc="rows older than this are dropped"),
    Option("spool_dir", as_text, doc="where undelivered batches wait"),
    Option("batch_size", as_int, None, at_least(1), _AT_LEAST_1, "events per insert"),
    Option("flush_interval", as_float, None, seconds, _SECONDS, "seconds between flushes"),
    Option("max_buffer", as_int, None, at_least(1), _AT_LEAST_1, "events held in memory"),
    Option("block_timeout", as_float, None, seconds, _SECONDS, "seconds a full buffer blocks"),
    Option("retry_interval", as_float, None, seconds, _SECONDS, "seconds between retries"),
    Option("connect_timeout", as_float, None, seconds, _SECONDS, "seconds to connect"),
    Option("send_receive_timeout", as_float, doc="seconds per request"),
    Option("auto_migrate", as_bool, doc="default: on for chdb, off for servers"),
    Option("verify", as_bool, doc="check the TLS certificate (default on)"),
    Option("journal", as_bool, doc="journal events before delivery (default on)"),
)
"""Every option; an unset one is None and the sink picks its default."""


def parse_options(url: StoreURL, options: Mapping[str, Any]) -> dict[str, Any]:
    """URL query options, overridden by keyword options; unknown names are ConfigErrors."""
    return OPTIONS.read(url, options)


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
