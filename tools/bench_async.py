"""Benchmark the async face (AsyncPraisonDB) against the raw async drivers, in one run.

Usage: .venv/bin/python tools/bench_async.py [--backends sqlite,postgres,mysql,redis,mongodb]
       [--sessions 1000] [--appends 20] [--tasks 200] [--rounds 3] [--synchronous NORMAL]
       [--peers]   (peers need .venv-bench: bash tools/bench_peers_env.sh)

Per backend, one table per section:

1. Appends: ``--sessions`` sessions x ``--appends`` appends driven by ``--tasks`` concurrent
   tasks on one loop (each session owned by one task, so its appends are in order), in
   msg/s: ``await db.messages.append`` against the same workload on the bare async driver
   (tools/bench_async_raw.py: same tables, same seq bookkeeping, same durability), and
   against the sync ``PraisonDB`` from 8 threads. Store, raw and sync take turns for
   ``--rounds`` rounds on fresh sessions; medians shown.
2. Loop lag while (1) runs: a ticker task sleeps 1 ms and records how late it wakes.
3. Loading a 10,000-message session: ``await db.messages.list(sid)`` against the raw
   async select decoded to the same Message objects (best of 7).
4. ``--peers``: the OpenAI Agents SDK's async sessions on the same workload
   (tools/bench_async_peers.py).
``--profile`` prints what one call through the bridge costs instead
(tools/bench_async_profile.py).

A backend is one ``Target``: a URL factory (tools/bench.py's throwaway databases), its
``AsyncRaw`` class and its peers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import TEXT, mongodb_url, mysql_url, postgres_url, redis_url, sqlite_url
from bench_async_peers import PEERS, Peer, missing_peers
from bench_async_raw import POOL, RAWS, AsyncRaw

from praisondb import PraisonDB
from praisondb.aio import AsyncPraisonDB

LOAD_SIZE = 10_000
LOAD_TRIES = 7
SYNC_THREADS = 8
TICK = 0.001

Append = Callable[[str, int], Awaitable[object]]


def progress(line: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


def metadata(i: int) -> dict[str, Any]:
    return {"i": i, "lang": "en"}


# -- the workload -------------------------------------------------------------------------


async def gather_limited(tasks: int, jobs: list[Callable[[], Awaitable[object]]]) -> None:
    """Run ``jobs`` with at most ``tasks`` of them in flight."""
    gate = asyncio.Semaphore(tasks)

    async def one(job: Callable[[], Awaitable[object]]) -> None:
        async with gate:
            await job()

    await asyncio.gather(*(one(job) for job in jobs))


async def drive(append: Append, sids: list[str], appends: int, tasks: int) -> float:
    """msg/s of ``appends`` appends to each of ``sids`` from ``tasks`` tasks on this loop."""

    async def worker(mine: list[str]) -> None:
        for i in range(appends):
            for sid in mine:
                await append(sid, i)

    started = time.perf_counter()
    workers = [asyncio.ensure_future(worker(sids[k::tasks])) for k in range(tasks)]
    try:
        await asyncio.gather(*workers)
    except BaseException:
        # one failed: stop the others, or they go on loading the server under later rounds
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        raise
    return len(sids) * appends / (time.perf_counter() - started)


def drive_threads(db: PraisonDB, sids: list[str], appends: int, threads: int) -> float:
    """msg/s of the same workload on the sync face from ``threads`` threads."""

    def worker(mine: list[str]) -> None:
        for i in range(appends):
            for sid in mine:
                db.messages.append(sid, "user", TEXT, metadata(i))

    with ThreadPoolExecutor(threads) as pool:
        started = time.perf_counter()
        for future in [pool.submit(worker, sids[k::threads]) for k in range(threads)]:
            future.result()
        return len(sids) * appends / (time.perf_counter() - started)


@dataclass
class Ticker:
    """Measures loop lag: how late a task that sleeps ``TICK`` wakes up, in ms."""

    lags: list[float] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None
    _two: asyncio.Event | None = None

    async def _run(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(TICK)
            self.lags.append((time.perf_counter() - started - TICK) * 1000)
            if len(self.lags) >= 2 and self._two is not None:
                self._two.set()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Tick while the body runs, and until two ticks are in: a run shorter than two
        ticks (a few fast appends) still gets a lag figure rather than none."""
        self._two = asyncio.Event()
        if len(self.lags) >= 2:
            self._two.set()
        self._task = asyncio.ensure_future(self._run())
        try:
            yield
            await self._two.wait()
        finally:
            self._task.cancel()

    def summary(self) -> tuple[float, float, float]:
        """p50, p99 and max in ms."""
        if len(self.lags) < 2:
            return (float("nan"),) * 3
        cuts = statistics.quantiles(self.lags, n=100, method="inclusive")
        return cuts[49], cuts[98], max(self.lags)


# -- one backend --------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    name: str
    url: Callable[[], AbstractContextManager[str]]
    raw: type[AsyncRaw]
    peers: tuple[Peer, ...] = ()


@dataclass
class Result:
    rates: dict[str, list[float]] = field(default_factory=dict)
    lag: dict[str, Ticker] = field(default_factory=dict)
    load_ms: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def rate(self, who: str) -> float:
        return statistics.median(self.rates[who]) if self.rates.get(who) else float("nan")

    def add(self, who: str, value: float) -> None:
        self.rates.setdefault(who, []).append(value)


class AsyncBench:
    """One backend: the async face, its raw driver and the sync face take turns."""

    def __init__(self, target: Target, url: str, args: argparse.Namespace) -> None:
        self.target, self.url, self.args = target, url, args
        self.result = Result()

    def ids(self, who: str) -> list[str]:
        tag = uuid.uuid4().hex[:6]
        return [f"{who}-{tag}-{i}" for i in range(self.args.sessions)]

    async def open(self) -> None:
        self.db = AsyncPraisonDB(self.url, auto_migrate=True)
        await self.db.ping()  # opens (and migrates) the store before anything is timed
        self.raw = self.target.raw(self.url)
        await self.raw.open()
        self.sync = PraisonDB(self.url)

    async def close(self) -> None:
        await self.raw.close()
        await self.db.close()
        self.sync.close()

    async def timed_appends(self, who: str, create: Append, append: Append) -> None:
        args = self.args
        sids = self.ids(who)
        await gather_limited(args.tasks, [lambda s=s: create(s, 0) for s in sids])
        ticker = self.result.lag.setdefault(who, Ticker())
        async with ticker.running():
            rate = await drive(append, sids, args.appends, args.tasks)
        self.result.add(who, rate)
        progress(f"{self.target.name} {who}: {rate:,.0f} msg/s")

    async def store_round(self) -> None:
        db = self.db

        async def create(sid: str, _: int) -> None:
            await db.sessions.create(sid)

        async def append(sid: str, i: int) -> None:
            await db.messages.append(sid, "user", TEXT, metadata(i))

        await self.timed_appends("store", create, append)

    async def raw_round(self) -> None:
        raw = self.raw

        async def create(sid: str, _: int) -> None:
            await raw.create_session(sid)

        async def append(sid: str, i: int) -> None:
            await raw.append(sid, "user", TEXT, metadata(i))

        await self.timed_appends("raw", create, append)

    def sync_round(self) -> None:
        sids = self.ids("sync")
        with ThreadPoolExecutor(SYNC_THREADS) as pool:
            list(pool.map(self.sync.sessions.create, sids))
        rate = drive_threads(self.sync, sids, self.args.appends, SYNC_THREADS)
        self.result.add("sync", rate)
        progress(f"{self.target.name} sync: {rate:,.0f} msg/s")

    async def peer_round(self, peer: Peer) -> None:
        """A peer that fails the workload is reported with its error, not as a number."""
        try:
            await self._peer_round(peer)
        except Exception as exc:  # noqa: BLE001 - any failure of theirs is the result
            self.result.errors[peer.name] = f"{type(exc).__name__}: {str(exc)[:120]}"
            progress(f"{self.target.name} {peer.name} failed: {exc!r}"[:300])

    async def _peer_round(self, peer: Peer) -> None:
        async with peer.open(self.url, self.args.synchronous) as factory:
            sessions: dict[str, Any] = {}

            async def create(sid: str, _: int) -> None:
                sessions[sid] = factory(sid)
                await sessions[sid].add_items([{"role": "user", "content": TEXT}])

            async def append(sid: str, i: int) -> None:
                await sessions[sid].add_items([{"role": "user", "content": TEXT}])

            await self.timed_appends(peer.name, create, append)

    async def appends(self) -> None:
        idle = self.result.lag.setdefault("idle", Ticker())
        async with idle.running():
            await asyncio.sleep(1.0)
        for _ in range(self.args.rounds):
            await self.store_round()
            await self.raw_round()
            await asyncio.to_thread(self.sync_round)
            for peer in self.target.peers if self.args.peers else ():
                await self.peer_round(peer)

    async def loads(self) -> None:
        sid = f"load-{uuid.uuid4().hex[:8]}"
        await self.db.sessions.create(sid)
        for start in range(0, LOAD_SIZE, 1000):
            batch = [
                {"role": "user", "content": f"{TEXT} #{start + i}", "metadata": metadata(i)}
                for i in range(1000)
            ]
            await self.db.messages.extend(sid, batch)
        assert len(await self.db.messages.list(sid)) == LOAD_SIZE
        assert len(await self.raw.load(sid)) == LOAD_SIZE
        times: dict[str, list[float]] = {"store": [], "raw": []}
        for _ in range(LOAD_TRIES):
            started = time.perf_counter()
            await self.db.messages.list(sid)
            times["store"].append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            await self.raw.load(sid)
            times["raw"].append((time.perf_counter() - started) * 1000)
        self.result.load_ms = {k: min(v) for k, v in times.items()}


async def run_target(target: Target, args: argparse.Namespace) -> Result:
    with target.url() as base:
        url = base
        if target.name == "sqlite":
            url = f"{base}?synchronous={args.synchronous}"
        bench = AsyncBench(target, url, args)
        await bench.open()
        try:
            await bench.appends()
            await bench.loads()
        finally:
            await bench.close()
        return bench.result


# -- reporting ----------------------------------------------------------------------------


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


def print_table(title: str, head: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    print(f"\n{title}\n")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


def label(name: str, args: argparse.Namespace) -> str:
    return f"SQLite (WAL, synchronous={args.synchronous})" if name == "sqlite" else name


def report(results: dict[str, Result], args: argparse.Namespace) -> None:
    rows = []
    for name, r in results.items():
        store, raw, sync = r.rate("store"), r.rate("raw"), r.rate("sync")
        rows.append(
            [
                label(name, args),
                f"{store:,.0f}",
                f"{raw:,.0f}",
                ratio(raw, store),
                f"{sync:,.0f}",
                ratio(store, sync),
            ]
        )
    print_table(
        f"1. Appends: {args.sessions:,} sessions x {args.appends} appends, {args.tasks} tasks on"
        f" one loop, msg/s (median of {args.rounds} rounds; raw pools hold {POOL} connections)",
        [
            "backend",
            "AsyncPraisonDB",
            "raw async driver",
            "raw/store (<= 1.3x)",
            f"sync PraisonDB, {SYNC_THREADS} threads",
            "async/sync",
        ],
        rows,
    )
    rows = []
    for name, r in results.items():
        idle = r.lag["idle"].summary()
        cells = [label(name, args)]
        for who in ("store", "raw"):
            p50, p99, top = r.lag[who].summary()
            cells += [f"{p50:.2f} / {p99:.2f} / {top:.1f}"]
        rows.append([*cells, f"{idle[0]:.2f} / {idle[1]:.2f} / {idle[2]:.1f}"])
    print_table(
        "2. Loop lag during (1), ms late on a 1 ms sleep: p50 / p99 / max (target p99 < 5 ms)",
        ["backend", "AsyncPraisonDB", "raw async driver", "idle loop"],
        rows,
    )
    rows = []
    for name, r in results.items():
        store, raw = r.load_ms["store"], r.load_ms["raw"]
        rows.append([label(name, args), f"{store:.1f}", f"{raw:.1f}", ratio(store, raw)])
    print_table(
        f"3. Load a {LOAD_SIZE:,}-message session, ms (best of {LOAD_TRIES})",
        ["backend", "await db.messages.list", "raw async select", "store/raw (<= 1.5x)"],
        rows,
    )
    if args.peers:
        rows = []
        for name, r in results.items():
            for peer in TARGETS[name].peers:
                theirs, ours = r.rate(peer.name), r.rate("store")
                if peer.name in r.errors:
                    figure, versus = f"failed: {r.errors[peer.name]}", "-"
                else:
                    figure, versus = f"{theirs:,.0f}", ratio(ours, theirs)
                rows.append([label(name, args), peer.name, figure, f"{ours:,.0f}", versus])
        print_table(
            "4. Peers on the workload of (1), msg/s",
            ["backend", "peer", "peer msg/s", "AsyncPraisonDB msg/s", "AsyncPraisonDB/peer"],
            rows,
        )


TARGETS: dict[str, Target] = {
    "sqlite": Target("sqlite", sqlite_url, RAWS["sqlite"], PEERS["sqlite"]),
    "postgres": Target("postgres", postgres_url, RAWS["postgres"], PEERS["postgres"]),
    "mysql": Target("mysql", mysql_url, RAWS["mysql"], PEERS["mysql"]),
    "redis": Target("redis", redis_url, RAWS["redis"], PEERS["redis"]),
    "mongodb": Target("mongodb", mongodb_url, RAWS["mongodb"], PEERS["mongodb"]),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgres,mysql,redis,mongodb")
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--appends", type=int, default=20, help="appends per session")
    parser.add_argument("--tasks", type=int, default=200, help="concurrent tasks on the loop")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--synchronous", default="NORMAL", choices=["NORMAL", "FULL"])
    parser.add_argument("--peers", action="store_true", help="also run the peers (.venv-bench)")
    parser.add_argument("--profile", action="store_true", help="the bridge's cost per call")
    args = parser.parse_args()
    if args.profile:
        from bench_async_profile import profile

        profile()
        return
    names = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = sorted(set(names) - set(TARGETS))
    if unknown:
        parser.error(f"unknown backends {unknown}; known: {sorted(TARGETS)}")
    if args.peers and (missing := missing_peers()):
        parser.error(
            f"--peers needs {missing} (bench-only, not praisondb dependencies): run"
            " `bash tools/bench_peers_env.sh`, then `.venv-bench/bin/python tools/bench_async.py"
            " --peers`"
        )
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load average {load}")
    results = {name: asyncio.run(run_target(TARGETS[name], args)) for name in names}
    report(results, args)


if __name__ == "__main__":
    main()
