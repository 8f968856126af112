"""Analytics benchmark: ingest through the facade, then every ready query on a big table.

    .venv/bin/python tools/bench_analytics.py                 # 1M ingest, 10M for queries
    .venv/bin/python tools/bench_analytics.py --events 200000 --query-events 1000000

Prints:
- events/s reaching ClickHouse: 1M prebuilt events pushed through ``db._emit`` as fast
  as one thread can, divided by (first call -> ``flush()`` returned); and the process
  CPU time per event over the same span (every thread: the caller, the flusher, the
  engine's inserts and merges), the figure to compare on a busy machine;
- caller-side cost per event, with the buffer not full: ``Event(...)`` + ``db._emit``
  (what a message append pays for analytics), then ``sink.record`` alone;
- ``db._emit`` per event while saturated: includes waiting for the flusher when the
  buffer is full (back-pressure), so it is about 1 / throughput, not a caller cost;
- each ready query's latency (best and median of ``--repeat`` runs) on ``--query-events``
  events generated inside the engine (INSERT ... SELECT, so the rollups fill as in life).

Targets (issue 6): >= 300,000 events/s, <= 10 us per event, every query < 500 ms on 10M.
Everything runs on the embedded engine (chdb) in a temporary directory.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from praisondb import PraisonDB
from praisondb.analytics import REPORT, Analytics
from praisondb.model import Event
from praisondb.stores.clickhouse import ClickHouseSink
from praisondb.urls import parse_url


def make_events(n: int) -> list[Event]:
    base = datetime.now(timezone.utc) - timedelta(days=1)
    kinds = ("message",) * 6 + ("run", "tool_call")
    events = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        events.append(
            Event(
                kind,
                ts=base + timedelta(microseconds=i * 50),
                session_id=f"s{i // 20}",
                user_id=f"u{(i // 20) % 997}",
                agent=f"agent{(i // 20) % 7}",
                model="m1" if kind == "run" else "",
                role="user" if kind == "message" else "",
                input_tokens=120 if kind == "run" else 0,
                output_tokens=80 if kind == "run" else 0,
                latency_ms=float(i % 900) if kind != "message" else 0.0,
                tool="search" if kind == "tool_call" else "",
                status="ok" if kind != "message" else "",
                attributes={"seq": i % 20},
            )
        )
    return events


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def bench_ingest(directory: Path, n: int, batch_size: int | None) -> tuple[str, dict[str, float]]:
    """The ingest figures, and what went wrong (events spooled or lost), if anything."""
    events = make_events(n)
    url = f"chdb://{directory / 'ingest'}"
    options = {} if batch_size is None else {"batch_size": batch_size}
    with PraisonDB("memory://", analytics_url=url, analytics_options=options) as db:
        sink = db.analytics
        assert sink is not None
        sink.ensure_schema()
        emit = db._emit
        cpu = _cpu_seconds()
        started = time.perf_counter()
        for event in events:
            emit(event)
        recorded = time.perf_counter()
        sink.flush()
        done = time.perf_counter()
        cpu = _cpu_seconds() - cpu
        stats = sink.stats()
        stored = sink.query("SELECT count() FROM praisondb.events").rows[0][0]
        del events

        # caller cost with room in the buffer (the flusher still runs alongside)
        caller = 100_000
        t0 = time.perf_counter()
        for i in range(caller):
            emit(Event("message", session_id="s", user_id="u", role="user", attributes={"seq": i}))
        caller_us = (time.perf_counter() - t0) / caller * 1e6
        sink.flush()
        t0 = time.perf_counter()
        sample = [
            Event("message", session_id="s", user_id="u", role="user", attributes={"seq": i})
            for i in range(caller)
        ]
        construct_us = (time.perf_counter() - t0) / caller * 1e6
        record = sink.record
        t0 = time.perf_counter()
        for event in sample:
            record(event)
        record_us = (time.perf_counter() - t0) / caller * 1e6
        sink.flush()
        final = sink.stats()
    problem = ""
    if stored != n or stats["spooled"] or final["spooled"]:
        problem = f"ingest lost or spooled events: stored {stored} of {n}, stats {final}"
    return problem, {
        "events": n,
        "events_per_s_to_clickhouse": n / (done - started),
        "cpu_us_per_event": cpu / n * 1e6,
        "flush_tail_s": done - recorded,
        "saturated_emit_us_per_event": (recorded - started) / n * 1e6,
        "caller_us_per_event": caller_us,
        "event_construction_us": construct_us,
        "record_us_per_event": record_us,
    }


GENERATE = """
INSERT INTO praisondb.events
SELECT
    toString(generateUUIDv7(number)) AS id,
    toDateTime64('2026-01-01 00:00:00', 6, 'UTC')
        + toIntervalMicrosecond(intDiv(number, 20) * 10368000 + (number % 20) * 3000000) AS ts,
    multiIf(number % 20 = 0, 'session_start', number % 20 < 13, 'message',
            number % 20 < 17, 'run', number % 97 = 0, 'error', 'tool_call') AS type,
    concat('s', toString(intDiv(number, 20))) AS session_id,
    concat('u', toString(cityHash64(intDiv(number, 20)) % 10000)) AS user_id,
    concat('agent', toString(cityHash64(intDiv(number, 20)) % 10)) AS agent,
    if(number % 20 BETWEEN 13 AND 16, concat('model', toString(number % 5)), '') AS model,
    if(number % 20 BETWEEN 1 AND 12, if(number % 2 = 0, 'user', 'assistant'), '') AS role,
    if(number % 20 BETWEEN 13 AND 16, number % 1000, 0) AS input_tokens,
    if(number % 20 BETWEEN 13 AND 16, number % 700, 0) AS output_tokens,
    if(number % 20 >= 13, (cityHash64(number) % 5000) / 1.0, 0) AS latency_ms,
    if(number % 20 >= 17, concat('tool', toString(number % 20)), '') AS tool,
    multiIf(number % 20 BETWEEN 13 AND 16, if(number % 50 = 0, 'failed', 'completed'),
            number % 20 >= 17, if(number % 31 = 0, 'error', 'ok'), '') AS status,
    '{"seq":1}' AS attributes
FROM numbers({n:UInt64})
"""


def bench_queries(directory: Path, n: int, repeat: int) -> dict[str, tuple[float, float, int]]:
    sink = ClickHouseSink(parse_url(f"chdb://{directory / 'queries'}", "analytics"))
    try:
        sink.ensure_schema()
        started = time.perf_counter()
        sink.admin_client().command(GENERATE, parameters={"n": n})
        print(
            f"generated {n:,} events in the engine in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        sink.admin_client().command("OPTIMIZE TABLE praisondb.session_stats FINAL")
        timings: dict[str, tuple[float, float, int]] = {}
        queries = Analytics(sink)
        calls: dict[str, Callable[[], Any]] = {name: getattr(queries, name) for name in REPORT}
        calls["session_timeline"] = lambda: queries.session_timeline(f"s{n // 40}")
        for name, call in calls.items():
            samples, rows = [], 0
            for _ in range(repeat):
                t0 = time.perf_counter()
                rows = len(call().rows)
                samples.append((time.perf_counter() - t0) * 1000)
            timings[name] = (min(samples), statistics.median(samples), rows)
        return timings
    finally:
        sink.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--query-events", type=int, default=10_000_000)
    parser.add_argument("--batch-size", type=int, default=None, help="default: the sink's")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--skip-queries", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="praisondb-bench-") as tmp:
        directory = Path(tmp)
        if not args.skip_ingest:
            problem, result = bench_ingest(directory, args.events, args.batch_size)
            print(f"ingest: {result['events']:,} events through db._emit -> chdb")
            print(
                f"  reaching ClickHouse:         {result['events_per_s_to_clickhouse']:,.0f} events/s"
                f"  ({result['cpu_us_per_event']:.2f} us of process CPU per event)"
            )
            print(f"  flush tail after last call:  {result['flush_tail_s']:.2f} s")
            print(
                f"  caller, Event() + db._emit:  {result['caller_us_per_event']:.2f} us/event"
                f"  (Event() alone {result['event_construction_us']:.2f})"
            )
            print(f"  caller, sink.record alone:   {result['record_us_per_event']:.2f} us/event")
            print(
                f"  db._emit while saturated:    {result['saturated_emit_us_per_event']:.2f} us/event"
                "  (includes back-pressure)"
            )
            if problem:
                sys.exit(problem)
        if not args.skip_queries:
            timings = bench_queries(directory, args.query_events, args.repeat)
            print(
                f"ready queries on {args.query_events:,} events (best / median of {args.repeat}, ms):"
            )
            for name, (best, median, rows) in timings.items():
                print(f"  {name:<18} {best:8.1f} {median:8.1f}   ({rows} rows)")


if __name__ == "__main__":
    main()
