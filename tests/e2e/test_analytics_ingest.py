"""The insert path on the real engine: Arrow and JSON bodies agree, tokens and replay stay exact."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest

from praisondb.analytics import Analytics
from praisondb.analytics.codec import ARROW, encode_json, events_to_columns
from praisondb.model import Event
from praisondb.stores.clickhouse import ClickHouseSink, insert
from praisondb.urls import parse_url

T0 = datetime(2025, 6, 1, 12, 0, 0, 123_456, tzinfo=timezone.utc)


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[ClickHouseSink]:
    opened = ClickHouseSink(
        parse_url(f"chdb://{tmp_path / 'analytics'}", "analytics"),
        spool_dir=str(tmp_path / "spool"),
        flush_interval=60,
    )
    opened.ensure_schema()
    yield opened
    opened.close()


def tricky_events(prefix: str) -> list[Event]:
    plus_five = timezone(timedelta(hours=5, minutes=30))
    return [
        Event(
            "message",
            ts=T0,
            id=f"{prefix}-1",
            session_id="sé😀",
            user_id="u\u00a0",
            agent="a",
            role="user",
            attributes={"seq": 1, "text": "naïve 😀", "nested": {"k": [1, 2.5, None]}},
        ),
        Event(
            "run",
            ts=datetime(2025, 6, 1, 17, 30, 0, 1, tzinfo=plus_five),  # 12:00:00.000001 UTC
            id=f"{prefix}-2",
            session_id="s2",
            model="m",
            input_tokens=2**63 + 5,
            output_tokens=3,
            latency_ms=1234.5678,
            status="completed",
        ),
        Event(
            "tool_call",
            ts=datetime(2025, 6, 1, 12, 0, 1),  # naive: UTC
            id=f"{prefix}-3",
            session_id="s2",
            tool="search",
            latency_ms=0.25,
            status="error",
            attributes={"when": datetime(2025, 1, 1, tzinfo=timezone.utc)},
        ),
    ]


def stored_rows(sink: ClickHouseSink, prefix: str) -> list[tuple[object, ...]]:
    return (
        Analytics(sink)
        .query(
            "SELECT substring(id, length({p:String}) + 1), toUnixTimestamp64Micro(ts), type, "
            "session_id, user_id, agent, model, role, input_tokens, output_tokens, latency_ms, "
            "tool, status, attributes FROM praisondb.events WHERE startsWith(id, {p:String}) "
            "ORDER BY id",
            {"p": prefix},
        )
        .rows
    )


def test_arrow_and_json_bodies_store_the_same_rows(
    sink: ClickHouseSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert ARROW
    sink.insert_now(tricky_events("arrow"))
    monkeypatch.setattr(insert, "ARROW", False)  # the path taken without pyarrow
    sink.insert_now(tricky_events("json"))
    arrow, json = stored_rows(sink, "arrow"), stored_rows(sink, "json")
    assert arrow == json and len(arrow) == 3
    first = arrow[0]
    assert first[1] == round(T0.timestamp() * 1_000_000)
    assert first[3:5] == ("sé😀", "u\u00a0")
    assert orjson.loads(str(first[13])) == {
        "seq": 1,
        "text": "naïve 😀",
        "nested": {"k": [1, 2.5, None]},
    }
    assert arrow[1][1] == first[1] - 123_455
    assert arrow[1][8:11] == (2**63 + 5, 3, 1234.5678)
    assert arrow[2][1] == round(
        datetime(2025, 6, 1, 12, 0, 1, tzinfo=timezone.utc).timestamp() * 1e6
    )
    assert orjson.loads(str(arrow[2][13])) == {"when": "2025-01-01T00:00:00+00:00"}


@pytest.mark.parametrize("arrow", [True, False])
def test_values_that_do_not_fit_are_coerced_on_both_paths(
    sink: ClickHouseSink, monkeypatch: pytest.MonkeyPatch, arrow: bool
) -> None:
    monkeypatch.setattr(insert, "ARROW", arrow)
    odd = Event("run", ts=T0, id=f"odd-{arrow}", session_id="bad\udc80", latency_ms=float("inf"))
    odd.input_tokens = -3
    sink.record(odd)
    sink.flush()
    assert sink.stats()["delivered"] == 1 and sink.stats()["rejected"] == 0
    assert Analytics(sink).query(
        "SELECT session_id, input_tokens, latency_ms FROM praisondb.events WHERE id = {i:String}",
        {"i": odd.id},
    ).rows == [("bad?", 0, 0.0)]


def test_the_same_batch_twice_counts_once_in_events_and_rollups(sink: ClickHouseSink) -> None:
    batch = [
        Event("message", ts=T0, session_id="twice", agent="a", role="user", attributes={"seq": i})
        for i in range(3)
    ]
    sink.insert_now(batch)
    sink.insert_now(batch)  # same ids, same token: ClickHouse drops the block
    other = [Event("message", ts=T0, session_id="twice", agent="a", role="user")]
    sink.insert_now(other)  # a different block with equal rollup rows still counts
    assert Analytics(sink).query("SELECT count() FROM praisondb.events").rows == [(4,)]
    assert Analytics(sink).query("SELECT sum(events) FROM praisondb.daily").rows == [(4,)]
    assert Analytics(sink).query(
        "SELECT sum(messages) FROM praisondb.session_stats WHERE session_id = 'twice'"
    ).rows == [(4,)]


def test_replay_skips_stored_ids_among_other_rows_of_the_same_span(sink: ClickHouseSink) -> None:
    def at(i: int) -> datetime:
        return T0 + timedelta(milliseconds=i)

    stored = [Event("message", ts=at(i), id=f"r-stored-{i}", session_id="r") for i in range(5)]
    others = [Event("message", ts=at(i), id=f"r-other-{i}", session_id="o") for i in range(50)]
    fresh = [Event("message", ts=at(i), id=f"r-fresh-{i}", session_id="r") for i in range(5)]
    sink.insert_now(stored)
    sink.insert_now(others)
    batch = [*stored, *fresh, fresh[0]]  # a spool line: some stored, some new, one repeated
    columns = orjson.loads(encode_json(events_to_columns(batch)))
    assert sink.replay_columns(columns) == 5
    assert sink.stats()["duplicates"] == 6
    assert sink.replay_columns(columns) == 0  # the same line again: nothing new
    assert Analytics(sink).query("SELECT count(), uniqExact(id) FROM praisondb.events").rows == [
        (60, 60)
    ]
    assert Analytics(sink).query("SELECT sum(messages) FROM praisondb.session_stats").rows == [
        (60,)
    ]


def pipelined_sink(tmp_path: Path, **options: object) -> ClickHouseSink:
    return ClickHouseSink(
        parse_url(f"chdb://{tmp_path / 'analytics'}", "analytics"),
        spool_dir=str(tmp_path / "spool"),
        flush_interval=60,
        batch_size=100,
        **options,
    )


def test_many_batches_in_one_cycle_arrive_complete_and_in_order(tmp_path: Path) -> None:
    sink = pipelined_sink(tmp_path)
    try:
        events = [
            Event("message", ts=T0 + timedelta(microseconds=i), session_id=f"p{i % 3}")
            for i in range(1050)
        ]
        events[420].latency_ms = float("nan")  # one batch in the middle needs cleaning
        for event in events:
            sink.record(event)
        sink.flush()
        stats = sink.stats()
        assert (stats["delivered"], stats["spooled"], stats["rejected"]) == (1050, 0, 0)
        assert Analytics(sink).query(
            "SELECT count(), uniqExact(id) FROM praisondb.events"
        ).rows == [(1050, 1050)]
        assert Analytics(sink).query("SELECT sum(events) FROM praisondb.session_stats").rows == [
            (1050,)
        ]
    finally:
        sink.close()


def test_target_lost_with_batches_in_flight_spools_the_rest_then_replays(tmp_path: Path) -> None:
    sink = pipelined_sink(tmp_path, retry_interval=0.01)
    try:
        sink.ensure_schema()
        sink.record(Event("message", session_id="warm"))
        sink.flush()  # the flusher is connected
        sink._writer.close()  # the engine goes away under the pipeline
        for i in range(550):
            sink.record(Event("message", ts=T0 + timedelta(microseconds=i), session_id="lost"))
        sink.flush()
        stats = sink.stats()
        spooled = stats["spooled"]
        assert spooled >= 100 and spooled + stats["delivered"] == 551  # whole batches spooled
        sink.record(Event("message", session_id="after"))
        sink.flush()  # reconnects (if not yet), replays the spool, delivers the new one
        stats = sink.stats()
        assert (stats["replayed"], stats["delivered"]) == (spooled, 552 - spooled)
        assert not stats["spool_pending"]
        assert Analytics(sink).query(
            "SELECT count(), uniqExact(id) FROM praisondb.events"
        ).rows == [(552, 552)]
    finally:
        sink.close()


def test_session_queries_fold_a_session_split_across_unmerged_parts(sink: ClickHouseSink) -> None:
    sink.admin_client().command("SYSTEM STOP MERGES praisondb.session_stats")
    day1, day2 = T0, T0 + timedelta(days=1)

    def labelled(kind: str, ts: datetime, role: str = "") -> Event:
        return Event(kind, ts=ts, session_id="split", user_id="u-split", agent="a-split", role=role)

    sink.insert_now([labelled("session_start", day1), labelled("message", day1, "user")])
    sink.insert_now(  # a day later, a second part; this message came without labels
        [
            Event("message", ts=day2, session_id="split", role="assistant"),
            labelled("message", day2 + timedelta(minutes=1), "user"),
        ]
    )
    parts = (
        Analytics(sink)
        .query(
            "SELECT count() FROM system.parts WHERE database = 'praisondb' "
            "AND table = 'session_stats' AND active"
        )
        .rows
    )
    assert parts == [(2,)]
    longest = Analytics(sink).longest_sessions(since=day1.date(), agent="a-split").rows
    assert [(r[0], r[1], r[2], r[3], r[4], r[5]) for r in longest] == [
        ("split", "u-split", "a-split", 3, 4, 86460.0)
    ]
    assert Analytics(sink).longest_sessions(since=day2.date()).rows == []  # started on day 1
    assert Analytics(sink).top_users(until=day1.date()).rows == [("u-split", 1, 3, 0, 0, 0)]
    assert Analytics(sink).session_lengths(agent="a-split").rows[0][:2] == ("2-5", 1)
