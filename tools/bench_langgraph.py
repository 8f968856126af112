#!/usr/bin/env python
"""LangGraph: the stock checkpoint savers against PraisonDBSaver, same workload, same backend.

    .venv/bin/python tools/bench_langgraph.py                 # 10,000-step thread
    .venv/bin/python tools/bench_langgraph.py --steps 2000 --backends sqlite

LangGraph: ``SqliteSaver`` and ``PostgresSaver`` (langgraph-checkpoint-sqlite/-postgres)
against ``PraisonDBSaver`` on the same engine (a file or database of each's own). The
workload is what a graph's loop does per super-step: ``put_writes`` of one task (two
writes) then ``put`` of the next checkpoint, whose channels are a turn counter and a
~200-byte message that change every step and a 2 KB config that never does. Measured:

* put per step: mean time of one step (put_writes + put), over the first 1,000 steps;
* growth: the same over the steps just before 100 and just before STEPS checkpoints;
* load: ``get_tuple`` of the latest checkpoint (what a resume costs) and
  ``list(limit=10)`` (recent history) once the thread has 100 and STEPS checkpoints.

A benchmark, not a test: it asserts nothing. Servers from ``tools/services.sh env``.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG_ADMIN = os.environ.get(
    "PRAISONDB_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
).replace("postgresql+psycopg://", "postgresql://", 1)
STATIC = {"model": "m", "tools": ["t" * 40] * 40}  # ~2 KB, never changes


@contextmanager
def pg_database() -> Iterator[str]:
    """A scratch PostgreSQL database, dropped afterwards."""
    import psycopg

    name = f"bench_fw_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def savers(backend: str, tmp: Path) -> Iterator[list[tuple[str, Any]]]:
    """(name, saver) pairs on ``backend``: the stock one, then praisondb's."""
    from langgraph.checkpoint.postgres import PostgresSaver
    from langgraph.checkpoint.sqlite import SqliteSaver

    from praisondb import PraisonDB
    from praisondb.integrations.langgraph import PraisonDBSaver

    if backend == "sqlite":
        conn = sqlite3.connect(tmp / "stock.db", check_same_thread=False)
        db = PraisonDB(f"sqlite:///{tmp / 'praisondb.db'}")
        try:
            yield [("SqliteSaver", SqliteSaver(conn)), ("PraisonDBSaver", PraisonDBSaver(db))]
        finally:
            conn.close()
            db.close()
        return
    with (
        pg_database() as stock_url,
        pg_database() as ours_url,
        PostgresSaver.from_conn_string(stock_url) as stock,
        PraisonDB(
            ours_url.replace("postgresql://", "postgresql+psycopg://", 1), auto_migrate=True
        ) as db,
    ):
        stock.setup()
        db.sessions.count()  # migrate before timing
        yield [("PostgresSaver", stock), ("PraisonDBSaver", PraisonDBSaver(db))]


class Thread:
    """One thread driven the way LangGraph's loop drives a checkpointer."""

    def __init__(self, saver: Any) -> None:
        self.saver = saver
        self.thread = f"bench-{uuid.uuid4().hex}"
        self.config: dict[str, Any] = {
            "configurable": {"thread_id": self.thread, "checkpoint_ns": ""}
        }
        self.versions: dict[str, Any] = {}
        self.steps = 0

    def step(self) -> None:
        from langgraph.checkpoint.base import empty_checkpoint

        i = self.steps
        message = f"step {i}: " + "x" * 190
        if "checkpoint_id" in self.config["configurable"]:
            self.saver.put_writes(self.config, [("message", message), ("turn", i)], f"task-{i}")
        changed = ["message", "turn"] if i else ["message", "turn", "static"]
        new = {c: self.saver.get_next_version(self.versions.get(c), None) for c in changed}
        self.versions.update(new)
        checkpoint = empty_checkpoint()
        checkpoint["channel_values"] = {"message": message, "turn": i, "static": STATIC}
        checkpoint["channel_versions"] = dict(self.versions)
        checkpoint["versions_seen"] = {"node": dict(self.versions)}
        metadata: Any = {"source": "loop", "step": i, "parents": {}}
        self.config = self.saver.put(self.config, checkpoint, metadata, new)
        self.steps += 1

    def latest(self) -> dict[str, Any]:
        return {"configurable": {"thread_id": self.thread, "checkpoint_ns": ""}}


def timed(fn: Callable[[], Any], repeat: int) -> float:
    """Mean milliseconds of ``fn`` over ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.mean(times) * 1000


def steps_until(thread: Thread, count: int) -> None:
    while thread.steps < count:
        thread.step()


def run_langgraph(backend: str, steps: int, tmp: Path) -> list[dict[str, Any]]:
    rows = []
    with savers(backend, tmp) as pairs:
        for name, saver in pairs:
            measure(rows, backend, name, saver, steps)
    return rows


def measure(rows: list[dict[str, Any]], backend: str, name: str, saver: Any, steps: int) -> None:
    """One saver's row: put per step, growth, load at 100 and ``steps`` checkpoints."""
    thread = Thread(saver)
    row: dict[str, Any] = {"backend": backend, "saver": name}
    row["put_ms"] = timed(thread.step, min(1000, steps))
    small = Thread(saver)
    steps_until(small, 90)
    row["put_at_100_ms"] = timed(small.step, 10)
    row["get_100_ms"] = timed(lambda: saver.get_tuple(small.latest()), 50)
    steps_until(thread, steps - 10)
    row["put_at_n_ms"] = timed(thread.step, 10)
    row["get_n_ms"] = timed(lambda: saver.get_tuple(thread.latest()), 50)
    row["list10_n_ms"] = timed(lambda: list(saver.list(thread.latest(), limit=10)), 10)
    rows.append(row)
    print(f"  {backend} {name}: done", file=sys.stderr)


def table(rows: list[dict[str, Any]], steps: int) -> str:
    lines = [
        f"| backend | saver | put per step (first 1,000) | put at 100 | put at {steps:,} "
        f"| get_tuple at 100 | get_tuple at {steps:,} | list(limit=10) at {steps:,} |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['backend']} | {r['saver']} | {r['put_ms']:.2f} ms | {r['put_at_100_ms']:.2f} ms "
            f"| {r['put_at_n_ms']:.2f} ms | {r['get_100_ms']:.2f} ms | {r['get_n_ms']:.2f} ms "
            f"| {r['list10_n_ms']:.2f} ms |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])

    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            rows.extend(run_langgraph(backend.strip(), args.steps, Path(tmp)))
    print(table(rows, args.steps))


if __name__ == "__main__":
    main()
