"""Logging without loss: spool while ClickHouse is unreachable, replay exactly once.

"Unreachable" is real: an HTTP URL on a port nobody listens on, or a chdb client
closed under the sink. Replay goes into the embedded engine, the same code path a
server takes when it comes back.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from praisondb import PraisonDB
from praisondb.analytics import Analytics
from praisondb.analytics.backfill import backfill
from praisondb.model import Event
from praisondb.stores import open_conversation_store
from praisondb.stores.clickhouse import ClickHouseSink
from praisondb.urls import parse_url


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def count(sink: ClickHouseSink) -> tuple[int, int]:
    rows = Analytics(sink).query("SELECT count(), uniqExact(id) FROM praisondb.events").rows
    return int(rows[0][0]), int(rows[0][1])


def events(n: int, prefix: str = "s") -> list[Event]:
    return [
        Event("message", session_id=f"{prefix}{i % 7}", role="user", attributes={"i": i})
        for i in range(n)
    ]


@pytest.fixture
def chdb_url(tmp_path: Path) -> str:
    return f"chdb://{tmp_path / 'analytics'}"


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.fixture
def sinks() -> Iterator[list[ClickHouseSink]]:
    opened: list[ClickHouseSink] = []
    yield opened
    for sink in opened:
        sink.close()


def test_unreachable_server_spools_then_replays_into_the_engine_exactly_once(
    chdb_url: str, spool_dir: Path, tmp_path: Path, sinks: list[ClickHouseSink]
) -> None:
    down = ClickHouseSink(
        parse_url(f"http://127.0.0.1:{closed_port()}", "analytics"),
        spool_dir=str(spool_dir),
        connect_timeout=1,
        batch_size=100,
    )
    sinks.append(down)
    batch = events(1000)
    for event in batch:
        down.record(event)
    down.flush()
    stats = down.stats()
    assert stats["spooled"] == 1000 and stats["delivered"] == 0
    assert "127.0.0.1" in (stats["last_error"] or "") or stats["last_error"]
    down.close()
    saved = tmp_path / "spool-copy"
    shutil.copytree(spool_dir, saved)
    assert [p.suffix for p in spool_dir.iterdir()] == [".jsonl"]

    up = ClickHouseSink(parse_url(chdb_url, "analytics"), spool_dir=str(spool_dir))
    sinks.append(up)
    up.flush()
    assert up.stats()["replayed"] == 1000
    assert count(up) == (1000, 1000)
    assert list(spool_dir.iterdir()) == []

    # the same spool again (a crash between insert and delete): nothing is written twice
    for path in saved.iterdir():
        shutil.copy(path, spool_dir / path.name)
    up.flush()
    assert up.stats()["duplicates"] == 1000
    assert count(up) == (1000, 1000)
    stored = {r[0] for r in Analytics(up).query("SELECT id FROM praisondb.events").rows}
    assert stored == {e.id for e in batch}


def test_engine_lost_mid_run_then_restored(
    chdb_url: str, spool_dir: Path, sinks: list[ClickHouseSink]
) -> None:
    sink = ClickHouseSink(
        parse_url(chdb_url, "analytics"), spool_dir=str(spool_dir), retry_interval=0.01
    )
    sinks.append(sink)
    for event in events(300, "a"):
        sink.record(event)
    sink.flush()
    assert sink.stats()["delivered"] == 300

    sink._writer.close()  # the engine goes away under the flusher
    for event in events(200, "b"):
        sink.record(event)
    sink.flush()
    stats = sink.stats()
    assert stats["spooled"] == 200 and stats["delivered"] == 300
    assert any(spool_dir.iterdir())

    for event in events(100, "c"):  # the next flush reconnects, replays, then delivers
        sink.record(event)
    sink.flush()
    stats = sink.stats()
    assert stats["replayed"] == 200 and stats["delivered"] == 400
    assert count(sink) == (600, 600)
    assert not stats["spool_pending"]


def test_full_buffer_never_drops(
    spool_dir: Path, chdb_url: str, sinks: list[ClickHouseSink]
) -> None:
    down = ClickHouseSink(
        parse_url(f"clickhouse://127.0.0.1:{closed_port()}", "analytics"),
        spool_dir=str(spool_dir),
        max_buffer=10,
        batch_size=10,
        block_timeout=0,
        flush_interval=60,
        connect_timeout=1,
    )
    sinks.append(down)
    for event in events(500):
        down.record(event)
    down.close()
    assert down.stats()["spooled"] == 500
    up = ClickHouseSink(parse_url(chdb_url, "analytics"), spool_dir=str(spool_dir))
    sinks.append(up)
    up.flush()
    assert count(up) == (500, 500)


def test_refused_batch_is_kept_not_dropped(
    chdb_url: str, spool_dir: Path, sinks: list[ClickHouseSink]
) -> None:
    sink = ClickHouseSink(parse_url(chdb_url, "analytics"), spool_dir=str(spool_dir))
    sinks.append(sink)
    good = Event("run", session_id="s", input_tokens=-5, latency_ms=float("nan"), model=None)  # type: ignore[arg-type]
    odd = Event("message", session_id="s", attributes={"when": datetime(2024, 1, 1), 1: {2}})  # type: ignore[dict-item]
    sink.record(good)
    sink.record(odd)
    sink.flush()
    assert count(sink) == (2, 2)
    rows = (
        Analytics(sink)
        .query("SELECT input_tokens, latency_ms, model FROM praisondb.events WHERE type = 'run'")
        .rows
    )
    assert rows == [(0, 0.0, "")]


def test_facade_logs_sessions_messages_and_runs(tmp_path: Path, chdb_url: str) -> None:
    with PraisonDB(f"sqlite:///{tmp_path / 'c.db'}", analytics_url=chdb_url) as db:
        db.sessions.create("s1", user_id="u1", agent="a1")
        db.messages.extend(
            "s1", [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
        )
        run = db.runs.start("s1", model="m1")
        db.runs.end(run.id, input_tokens=3, output_tokens=4)
        assert db.analytics is not None
        db.analytics.flush()
        assert db.analytics.top_users().rows == [("u1", 1, 2, 1, 7, 0)]
        timeline = db.analytics.session_timeline("s1")
        assert [r[1] for r in timeline.rows] == [
            "session_start",
            "message",
            "message",
            "run_start",
            "run",
        ]


def test_backfill_is_idempotent_and_skips_live_events(tmp_path: Path, chdb_url: str) -> None:
    database_url = f"sqlite:///{tmp_path / 'c.db'}"
    with PraisonDB(database_url, analytics_url=chdb_url) as db:  # logged live
        db.sessions.create("live", user_id="u1", agent="a1")
        db.messages.append("live", "user", "hello")
    with PraisonDB(database_url) as db:  # not logged
        db.sessions.create("old", user_id="u2", agent="a2")
        db.messages.extend("old", [{"role": "user", "content": "x"}] * 3)
        run = db.runs.start("old", model="m1")
        db.runs.end(run.id, input_tokens=5, output_tokens=6)
    source = open_conversation_store(parse_url(database_url))
    sink = ClickHouseSink(parse_url(chdb_url, "analytics"))
    try:
        first = backfill(sink, source)
        assert (first.sessions, first.inserted, first.skipped) == (2, 5, 2)
        again = backfill(sink, source, since=datetime(2000, 1, 1, tzinfo=timezone.utc))
        assert (again.inserted, again.skipped) == (0, 7)
        assert count(sink) == (7, 7)
        assert Analytics(sink).top_users().rows == [("u2", 1, 3, 1, 11, 0), ("u1", 1, 1, 0, 0, 0)]
    finally:
        sink.close()
        source.close()
