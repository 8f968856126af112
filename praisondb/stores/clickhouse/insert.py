"""One INSERT of a batch: encode it, send it (on a helper thread), and check ids on replay.

The flusher encodes batch n+1 while batch n's INSERT runs in a :class:`Flight` (the
engine releases the interpreter lock), so Python work and engine work overlap.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from ...analytics.codec import (
    ARROW,
    Columns,
    as_text,
    batch_token,
    encode_arrow,
    id_hashes,
    time_span,
)
from ...analytics.schema import EVENT_COLUMNS, Layout
from ...errors import BatchTypeError

ID_CHECK_CHUNK = 2000
ID_CHECK_CHUNK_CHDB = 50_000

INSERT_JSON = (
    "INSERT INTO {db:Identifier}.{t:Identifier} (" + ", ".join(EVENT_COLUMNS) + ") "
    "SETTINGS insert_deduplication_token = '%s', date_time_input_format = 'best_effort', "
    "input_format_json_read_objects_as_strings = 1%s FORMAT JSONCompactColumns"
)
"""The insert without pyarrow: a JSONCompactColumns body (~10x the server CPU of Arrow).

The token is our own hex digest, the only text formatted in; the table is bound."""


@dataclass(frozen=True, slots=True)
class Encoded:
    """A batch ready to send: its deduplication token and its body."""

    token: str
    body: bytes
    arrow: bool


Send = Callable[[Encoded, Any], None]


class Flight:
    """One INSERT, run on a helper thread while the flusher encodes the next batch."""

    __slots__ = ("_thread", "columns", "error", "first")

    def __init__(self, columns: Columns, start: int) -> None:
        self.columns = columns
        self.first = start  # the number of the batch's first event (see Watermark)
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def start(
        cls, send: Send, columns: Columns, encoded: Encoded, client: Any, start: int
    ) -> Flight:
        flight = cls(columns, start)
        thread = threading.Thread(
            target=flight._run,
            args=(send, encoded, client),
            name="praisondb-analytics-insert",
            daemon=True,
        )
        try:
            thread.start()
        except RuntimeError:  # no new threads (interpreter shutting down): send here
            flight._run(send, encoded, client)
        else:
            flight._thread = thread
        return flight

    @classmethod
    def run_here(
        cls, send: Send, columns: Columns, encoded: Encoded, client: Any, start: int
    ) -> Flight:
        flight = cls(columns, start)
        flight._run(send, encoded, client)
        return flight

    def _run(self, send: Send, encoded: Encoded, client: Any) -> None:
        try:
            send(encoded, client)
        except Exception as exc:  # noqa: BLE001 - handed to the flusher, which classifies it
            self.error = exc

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()


def encode(columns: Columns) -> Encoded:
    """The insert body: Arrow when pyarrow is installed, else JSON text.

    Raises :class:`BatchTypeError` when a value does not fit its column.
    """
    token = batch_token(columns[0])
    if ARROW:
        return Encoded(token, encode_arrow(columns), arrow=True)
    try:
        body = orjson.dumps(columns, option=orjson.OPT_NAIVE_UTC)
    except TypeError as exc:
        raise BatchTypeError(str(exc)) from exc
    return Encoded(token, body, arrow=False)


def send_batch(client: Any, layout: Layout, encoded: Encoded) -> None:
    """One INSERT carrying the batch's deduplication token."""
    if encoded.arrow:
        settings: dict[str, Any] = {"insert_deduplication_token": encoded.token}
        if layout.cluster:
            settings["distributed_foreground_insert"] = 1
        client.raw_insert(
            layout.name("events"),
            EVENT_COLUMNS,
            encoded.body,
            settings=settings,
            fmt="ArrowStream",
        )
        return
    extra = ", distributed_foreground_insert = 1" if layout.cluster else ""
    client.command(
        INSERT_JSON % (encoded.token, extra),
        parameters={"db": layout.database, "t": "events"},
        data=encoded.body,
    )


def unstored(
    columns: Columns, stored: Callable[[list[str], tuple[int, int] | None], set[str]]
) -> tuple[Columns, int]:
    """The batch without repeated ids and ids ``stored`` reports; and how many rows remain.

    ``stored(ids, span)`` looks the candidate ids up within the batch's time span.
    """
    ids = columns[0]
    if not all(type(i) is str for i in ids):
        ids = [as_text(i) for i in ids]
    keep: list[int] | None = None  # None: every row
    if len(set(ids)) != len(ids):
        first: dict[str, int] = {}
        for index, event_id in enumerate(ids):
            first.setdefault(event_id, index)
        keep = sorted(first.values())
    candidates = ids if keep is None else [ids[i] for i in keep]
    stamps = columns[1] if keep is None else [columns[1][i] for i in keep]
    found = stored(candidates, time_span(stamps))
    if found:
        keep = [i for i in (range(len(ids)) if keep is None else keep) if ids[i] not in found]
    if keep is None:
        return [ids, *columns[1:]], len(ids)
    return [[ids[i] for i in keep], *([c[i] for i in keep] for c in columns[1:])], len(keep)


def stored_ids(
    client: Any, layout: Layout, ids: list[str], span: tuple[int, int] | None, *, chdb: bool
) -> set[str]:
    """Which of these ids ClickHouse holds, looked up within the batch's time span.

    First a count of the span (cheap: ``ts`` is in the sort key after two
    low-cardinality columns): after an outage nothing from the span is stored and
    the check ends there. Otherwise the ids travel as ``halfMD5`` integers (see
    :func:`id_hashes`) and the matches come back as real ids, compared exactly
    here. Over HTTP bound values ride in the URL, hence the chunks.
    """
    low, high = (0, 2**62) if span is None else (span[0] - 1, span[1] + 1)
    where = (
        "FROM {db:Identifier}.{t:Identifier} "
        "WHERE ts >= fromUnixTimestamp64Micro({low:Int64}, 'UTC') "
        "AND ts <= fromUnixTimestamp64Micro({high:Int64}, 'UTC')"
    )
    bounds = {"db": layout.database, "t": "events", "low": low, "high": high}
    if not client.query("SELECT count() " + where, parameters=bounds).result_rows[0][0]:
        return set()
    chunk = ID_CHECK_CHUNK_CHDB if chdb else ID_CHECK_CHUNK
    wanted = set(ids)
    hashes = id_hashes(ids)
    found: set[str] = set()
    for start in range(0, len(hashes), chunk):
        result = client.query(
            "SELECT id " + where + " AND halfMD5(id) IN {hashes:Array(UInt64)}",
            parameters={**bounds, "hashes": hashes[start : start + chunk]},
        )
        found.update(row[0] for row in result.result_rows if row[0] in wanted)
    return found


__all__ = ["Encoded", "Flight", "Send", "encode", "send_batch", "stored_ids", "unstored"]
