"""How a batch of analytics events is encoded: Arrow for inserts, JSON for the spool.

The insert body is an Arrow IPC stream (``FORMAT ArrowStream``) built from one
Python list per column. ClickHouse reads Arrow about ten times cheaper than the
``JSONCompactColumns`` text this sink used to send (measured on chdb 26.x: ~4 us of
server CPU per event to parse JSON, ~0.5 us for Arrow), and building it costs the
flusher ~1 us per event, most of it the timestamps.

The spool keeps JSON (``JSONCompactColumns``, one batch per line): it is written only
while ClickHouse is away, must survive a torn write, and stays readable by a human
and by older versions. Replay decodes it back to columns and inserts them as Arrow.

When pyarrow is not installed (the ``clickhouse`` extra alone), :data:`ARROW` is
False and the sink sends the JSON body instead: slower, same result.

Values that do not fit their column (a negative token count, NaN latency, a lone
surrogate, an unserialisable attribute) make the fast encoder raise
:class:`BatchTypeError`; :func:`clean_columns` then coerces every value exactly as the
JSON path always did (NaN and infinities become 0, negatives 0, unreadable times now).
"""

from __future__ import annotations

import array
import hashlib
import importlib
import math
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson

from ..errors import BatchTypeError
from ..model import Event
from .schema import EVENT_COLUMNS

Columns = list[list[Any]]

_pa: Any
_pc: Any
try:  # imported by name: pyarrow ships no type information
    _pa = importlib.import_module("pyarrow")
    _pc = importlib.import_module("pyarrow.compute")
except ImportError:  # pragma: no cover - exercised only without the chdb extra
    _pa = _pc = None

ARROW: bool = _pa is not None
"""Whether inserts are sent as Arrow (pyarrow importable) or as JSON text."""

_UINT64_MAX = 2**64 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
_DUMPS_OPTIONS = orjson.OPT_NAIVE_UTC
_STRING_COLUMNS = frozenset({0, 2, 3, 4, 5, 6, 7, 11, 12})
_COUNT_COLUMNS = frozenset({8, 9})
_TS, _LATENCY, _ATTRIBUTES = 1, 10, 13


def events_to_columns(batch: list[Event]) -> Columns:
    """The fast path: one comprehension per column, no per-event function call."""
    return [
        [e.id for e in batch],
        [e.ts for e in batch],
        [e.type for e in batch],
        [e.session_id for e in batch],
        [e.user_id for e in batch],
        [e.agent for e in batch],
        [e.model for e in batch],
        [e.role for e in batch],
        [e.input_tokens for e in batch],
        [e.output_tokens for e in batch],
        [e.latency_ms for e in batch],
        [e.tool for e in batch],
        [e.status for e in batch],
        [e.attributes for e in batch],
    ]


# -- the deduplication token --------------------------------------------------------


def batch_token(ids: list[Any]) -> str:
    """A batch's insert-deduplication token: the same ids in the same order, the same token.

    One join and one hash per batch (not two ``update`` calls per id): this runs on
    the flusher thread, which shares the interpreter lock with the caller.
    """
    try:
        data = "\x00".join(ids).encode("utf-8", "surrogatepass")
    except TypeError:
        data = "\x00".join(as_text(i) for i in ids).encode("utf-8", "surrogatepass")
    return "pdb-" + hashlib.blake2b(data + b"\x00", digest_size=16).hexdigest()


def id_hashes(ids: list[str]) -> list[int]:
    """ClickHouse's ``halfMD5(id)`` of each id, computed here.

    Replay asks which ids are stored by sending these integers, not the ids: a bound
    ``Array(String)`` of 50,000 ids cost clickhouse-connect ~5 us per id to escape
    (character by character); integers cost a fifth of that, and the rows that match
    come back with their real ids, so a hash collision never hides an event.
    """
    md5 = hashlib.md5
    return [
        int.from_bytes(md5(i.encode("utf-8", "surrogatepass")).digest()[:8], "big") for i in ids
    ]


def time_span(values: list[Any]) -> tuple[int, int] | None:
    """The earliest and latest time in a batch, in microseconds since the epoch.

    None when a value is unreadable (the caller then searches all time).
    """
    if not values:
        return None
    if _pa is not None:
        try:
            bounds = _pc.min_max(_timestamps(values).cast(_pa.int64()))
            return int(bounds["min"].as_py()), int(bounds["max"].as_py())
        except (_pa.ArrowException, TypeError, ValueError, OverflowError):
            pass
    parsed = [parse_ts(v) for v in values]
    stamps = [t for t in parsed if t is not None]
    if len(stamps) != len(values):
        return None
    micros = [round(t.timestamp() * 1_000_000) for t in stamps]
    return min(micros), max(micros)


# -- JSON (the spool, rejected batches, and inserts without pyarrow) ------------------


def encode_json(columns: Columns) -> bytes:
    """A JSONCompactColumns body; falls back to coercing every value when orjson refuses."""
    try:
        return orjson.dumps(columns, option=_DUMPS_OPTIONS)
    except TypeError:
        return orjson.dumps(clean_columns(columns), option=_DUMPS_OPTIONS)


# -- Arrow (every insert when pyarrow is installed) --------------------------------------


def encode_arrow(columns: Columns) -> bytes:
    """An Arrow IPC stream of the batch, or :class:`BatchTypeError` if a value does not fit."""
    if _pa is None:  # pragma: no cover - callers check ARROW first
        raise RuntimeError("pyarrow is not installed")
    pa = _pa
    arrays: list[Any] = []
    try:
        for index, values in enumerate(columns):
            if index in _STRING_COLUMNS:
                arrays.append(pa.array(values, pa.string()))
            elif index == _TS:
                arrays.append(_timestamps(values))
            elif index in _COUNT_COLUMNS:
                arrays.append(pa.array(values, pa.uint64()))
            elif index == _LATENCY:
                arrays.append(_floats(values))
            else:
                arrays.append(_attributes_array(values))
        table = pa.Table.from_arrays(arrays, names=list(EVENT_COLUMNS))
    except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
        raise BatchTypeError(f"{type(exc).__name__}: {exc}") from exc
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    body: bytes = sink.getvalue().to_pybytes()
    return body


def _timestamps(values: list[Any]) -> Any:
    """Aware or naive (= UTC) datetimes; ISO strings with an offset (a replayed spool).

    Aware datetimes (what ``Event`` makes) go through integer microseconds: a third
    cheaper than pyarrow's own conversion, which asks each value for its offset.
    """
    pa = _pa
    assert pa is not None
    kind = pa.timestamp("us", tz="UTC")
    epoch, micro = _EPOCH, _MICROSECOND
    try:
        return pa.array([(v - epoch) // micro for v in values], pa.int64()).view(kind)
    except TypeError:  # naive datetimes, strings: let pyarrow read them
        pass
    try:
        return pa.array(values, kind)
    except (pa.ArrowTypeError, pa.ArrowInvalid, TypeError):
        if not values or not isinstance(values[0], str):
            raise
    return pa.array(values, pa.string()).cast(kind)


def _floats(values: list[Any]) -> Any:
    """Float64, refusing NaN and infinities (JSON sent them as null, i.e. 0: keep that)."""
    pa = _pa
    assert pa is not None
    result = pa.array(values, pa.float64())
    if result.null_count or not math.isfinite(sum(values)):
        raise BatchTypeError("latency_ms holds null, NaN or an infinity")
    return result


def _attributes_array(values: list[Any]) -> Any:
    """One binary array built from one buffer.

    Not ``pa.array(list(map(orjson.dumps, values)))``: keeping 50,000 small bytes
    objects alive at once made the allocator fault in a fresh page for nearly every
    one (~6 us per event on this machine class); appending each to one bytearray
    reuses the same memory, ~0.3 us per event.
    """
    pa = _pa
    assert pa is not None
    buffer = bytearray()
    offsets = array.array("i", [0])
    append = offsets.append
    dumps = orjson.dumps
    for value in values:
        if type(value) is dict:
            buffer += dumps(value, option=_DUMPS_OPTIONS) if value else b"{}"
        elif isinstance(value, str):
            buffer += value.encode("utf-8")
        elif not value:
            buffer += b"{}"
        else:
            buffer += dumps(value, option=_DUMPS_OPTIONS)
        append(len(buffer))  # OverflowError past 2 GiB: the caller's BatchTypeError
    return pa.Array.from_buffers(
        pa.binary(), len(values), [None, pa.py_buffer(offsets), pa.py_buffer(buffer)]
    )


# -- coercion: the retry for a batch that did not fit ----------------------------------


def as_text(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate cannot be stored anywhere
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def _count(value: Any) -> int:
    try:
        return min(max(int(value or 0), 0), _UINT64_MAX)
    except (TypeError, ValueError, OverflowError):
        return 0


def _number(value: Any) -> float:
    try:
        number = float(value or 0.0)
    except (TypeError, ValueError, OverflowError):
        return 0.0
    return number if math.isfinite(number) else 0.0


def _timestamp(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, str):
        try:
            return _timestamp(datetime.fromisoformat(value))
        except ValueError:
            pass
    return datetime.now(timezone.utc)


def _attributes(value: Any) -> str:
    if not value:
        return "{}"
    if isinstance(value, str):
        return as_text(value)
    try:
        return orjson.dumps(
            value, default=str, option=orjson.OPT_NON_STR_KEYS | _DUMPS_OPTIONS
        ).decode()
    except TypeError:
        return orjson.dumps({"unserializable": as_text(repr(value))[:1000]}).decode()


_CLEANERS: tuple[Callable[[Any], Any], ...] = (
    as_text,
    _timestamp,
    as_text,
    as_text,
    as_text,
    as_text,
    as_text,
    as_text,
    _count,
    _count,
    _number,
    as_text,
    as_text,
    _attributes,
)


def clean_columns(columns: Columns) -> Columns:
    """Every value coerced to its column's type: the retry for a batch that did not fit."""
    return [[clean(v) for v in column] for clean, column in zip(_CLEANERS, columns, strict=True)]


def parse_ts(value: Any) -> datetime | None:
    """A stored or spooled time as an aware datetime; None when unreadable."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    try:
        stamp = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)
