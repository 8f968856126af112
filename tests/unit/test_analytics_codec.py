"""Batch encoding for analytics inserts: Arrow body, JSON spool, tokens, id hashes, spans."""

from __future__ import annotations

import importlib
import math
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from praisondb.analytics.codec import (
    ARROW,
    batch_token,
    clean_columns,
    encode_arrow,
    encode_json,
    events_to_columns,
    id_hashes,
    time_span,
)
from praisondb.analytics.schema import EVENT_COLUMNS
from praisondb.errors import BatchTypeError
from praisondb.model import Event

pa: Any = importlib.import_module("pyarrow")  # no type information shipped
UTC = timezone.utc
T0 = datetime(2026, 1, 2, 3, 4, 5, 600_007, tzinfo=UTC)


def decode(body: bytes) -> dict[str, list[object]]:
    table = pa.ipc.open_stream(body).read_all()
    assert table.column_names == list(EVENT_COLUMNS)
    return {name: table.column(name).to_pylist() for name in table.column_names}


def test_pyarrow_is_used_when_installed() -> None:
    assert ARROW


def test_arrow_body_holds_every_column_as_its_clickhouse_type() -> None:
    plus_two = timezone(timedelta(hours=2))
    events = [
        Event("message", ts=T0, id="a", session_id="s1", role="user", attributes={"seq": 1}),
        Event(
            "run",
            ts=datetime(2026, 1, 2, 5, 0, 0, 1, tzinfo=plus_two),  # 03:00:00.000001 UTC
            id="b",
            model="m",
            input_tokens=2**63,
            output_tokens=0,
            latency_ms=12.5,
            status="completed",
            attributes={},
        ),
        Event("error", ts=datetime(2026, 1, 2, 3), id="c", attributes={"é": "😀", "n": None}),
    ]
    table = decode(encode_arrow(events_to_columns(events)))
    assert table["id"] == ["a", "b", "c"]
    micros = [int(v.timestamp() * 1_000_000) for v in table["ts"]]  # type: ignore[attr-defined]
    assert micros == [
        round(T0.timestamp() * 1_000_000),
        round(datetime(2026, 1, 2, 3, 0, 0, 1, tzinfo=UTC).timestamp() * 1_000_000),
        round(datetime(2026, 1, 2, 3, tzinfo=UTC).timestamp() * 1_000_000),  # naive = UTC
    ]
    assert table["input_tokens"] == [0, 2**63, 0]
    assert table["latency_ms"] == [0.0, 12.5, 0.0]
    assert [orjson.loads(v) for v in table["attributes"]] == [  # type: ignore[arg-type]
        {"seq": 1},
        {},
        {"é": "😀", "n": None},
    ]


@pytest.mark.parametrize(
    "change",
    [
        {"input_tokens": -1},
        {"output_tokens": 2**64},
        {"latency_ms": math.nan},
        {"latency_ms": math.inf},
        {"session_id": "bad\udc80"},
        {"model": 7},
        {"ts": "yesterday"},
        {"attributes": {"s": {1, 2}}},
    ],
)
def test_values_that_do_not_fit_are_refused_then_cleaned(change: dict[str, object]) -> None:
    event = Event("run", ts=T0, id="x")
    for name, value in change.items():
        setattr(event, name, value)
    columns = events_to_columns([event])
    with pytest.raises(BatchTypeError):
        encode_arrow(columns)
    table = decode(encode_arrow(clean_columns(columns)))
    assert table["id"] == ["x"]
    assert table["latency_ms"][0] in (0.0,)
    assert table["input_tokens"][0] in (0, 2**64 - 1)
    assert "\udc80" not in str(table["session_id"][0])


def test_spooled_json_decodes_back_into_an_equal_arrow_body() -> None:
    events = [
        Event("message", ts=T0 + timedelta(seconds=i), session_id="s", attributes={"i": i})
        for i in range(5)
    ]
    columns = events_to_columns(events)
    replayed = orjson.loads(encode_json(columns))  # what the spool hands back
    assert isinstance(replayed[1][0], str)
    assert decode(encode_arrow(replayed)) == decode(encode_arrow(columns))


def test_batch_token_depends_on_ids_and_their_order() -> None:
    assert batch_token(["a", "b"]) == batch_token(["a", "b"])
    assert batch_token(["a", "b"]) != batch_token(["b", "a"])
    assert batch_token(["ab"]) != batch_token(["a", "b"])
    assert batch_token([1, "b"]) == batch_token(["1", "b"])
    assert batch_token(["a"]).startswith("pdb-")


def test_id_hashes_are_clickhouse_half_md5() -> None:
    # values from SELECT halfMD5(...) on ClickHouse 26.x
    assert id_hashes(["0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "x"]) == [
        1419265261327824104,
        11372966064927047732,
    ]


def test_time_span() -> None:
    later = T0 + timedelta(hours=1)
    micros = round(T0.timestamp() * 1_000_000)
    hour = 3_600_000_000
    assert time_span([later, T0]) == (micros, micros + hour)
    assert time_span([later.isoformat(), T0.isoformat()]) == (micros, micros + hour)
    naive = T0.replace(tzinfo=None)
    assert time_span([naive]) == (micros, micros)
    assert time_span([naive.isoformat()]) == (micros, micros)
    assert time_span([T0, "not a time"]) is None
    assert time_span([]) is None
