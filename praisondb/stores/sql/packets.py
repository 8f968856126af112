"""MySQL/MariaDB's ``max_allowed_packet``: sizing values and refusing oversize ones early.

The server would drop the connection (which looks like an outage) or refuse the
statement: both the engine hook and the store's batch checks word it here, once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from ...errors import ValidationError
from ...urls import StoreURL

_MAX_PACKET = "praisondb_max_allowed_packet"
PACKET_CHECK_FROM = 1 << 20
"""Values below this are never checked against MySQL's max_allowed_packet."""
PACKET_OVERHEAD = 64 * 1024
"""The rest of a statement around its biggest value: ids, metadata, SQL text."""


def configure_mysql_packet_check(engine: Engine, url: StoreURL) -> None:
    """Refuse a statement with a value over ``max_allowed_packet`` before sending it.

    The server would drop the connection (error 2006/2013, which looks like an outage
    and is retried) or refuse it (1153). Only single statements are checked here; the
    message write paths check their batches themselves (``SQLStore._check_packet``).
    """

    @event.listens_for(engine, "before_cursor_execute")
    def _check(
        conn: Connection,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        if executemany or not parameters:
            return
        values = parameters.values() if isinstance(parameters, Mapping) else parameters
        size = max((len(v) for v in values if isinstance(v, (str, bytes))), default=0)
        if size < PACKET_CHECK_FROM:
            return
        limit = conn.info.get(_MAX_PACKET)
        if limit is None:
            probe: Any = conn.connection.cursor()  # cursor.connection: not on adapted ones
            try:
                probe.execute("SELECT @@max_allowed_packet")
                limit = conn.info[_MAX_PACKET] = int(probe.fetchone()[0])
            finally:
                probe.close()
        if size + PACKET_OVERHEAD > limit:
            raise ValidationError(packet_too_large(url, size, limit))


def packet_too_large(url: StoreURL, size: int | None = None, limit: int | None = None) -> str:
    """How to fix a value over MySQL/MariaDB's ``max_allowed_packet``."""
    what = f"a value of {_mib(size)}" if size is not None else "a statement"
    cap = f" ({_mib(limit)})" if limit is not None else ""
    return (
        f"{what} is over the max_allowed_packet{cap} of {url.redacted}: raise it on the "
        "server (SET GLOBAL max_allowed_packet = 1073741824, and max_allowed_packet = 1G "
        "under [mysqld] in my.cnf to keep it; 1 GiB is the most), or store big payloads "
        "elsewhere and keep a reference"
    )


def _mib(size: int) -> str:
    return f"{size / 1048576:.1f} MiB"


def message_bytes(messages: Sequence[Any]) -> int:
    """The size of the biggest message's content as sent (each row is its own packet or
    shares one with smaller rows); 0 when every message is small."""
    largest = 0
    for message in messages:
        content = message.content
        if isinstance(content, str):
            size = len(content) if len(content) < _SMALL else len(content.encode())
        else:
            size = len(orjson.dumps(content))
        largest = max(largest, size)
    return largest


_SMALL = 1 << 18
"""Below this many characters the length stands in for the UTF-8 size (encoding a huge
value to count its bytes is worth it only where the size can matter)."""
