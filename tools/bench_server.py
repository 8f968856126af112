"""Append and load through ``praisondb serve`` against the same store used directly.

One run, the two side by side: a SQLite file opened by this process, and the same kind of
file behind a ``praisondb serve`` subprocess reached through ``praisondb+http://``. With 1
and with N concurrent clients (threads, each its own PraisonDB and session):

- append: one message per call (``db.messages.append``), throughput and p50/p99 latency;
- load: a whole history of ``--history`` messages (``db.messages.list``), p50/p99.

Prints a Markdown table (the README's) with the server/direct ratio of each row.
Usage: ``python tools/bench_server.py [--appends 400] [--clients 1,100] [--history 1000]``
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from praisondb import PraisonDB  # noqa: E402


@contextmanager
def served(database_url: str, log: Path) -> Iterator[str]:
    """A ``praisondb serve`` subprocess on a socket bound here; yields its client URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    sock.set_inheritable(True)
    port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "praisondb", "serve", "--database-url", database_url]
    cmd += ["--auto-migrate", "--fd", str(sock.fileno())]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with log.open("ab") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=out, pass_fds=(sock.fileno(),), env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"praisondb serve did not start: {log.read_text()[-2000:]}")
            time.sleep(0.05)  # polling interval
        yield f"praisondb+http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(30)
        sock.close()


@contextmanager
def store_url(kind: str, tmp: Path) -> Iterator[str]:
    """The store both paths use (one file or database; their sessions are apart)."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp / 'bench.db'}"
        return
    import psycopg

    base = os.environ.get(
        "PRAISONDB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    admin = base.replace("postgresql+psycopg://", "postgresql://", 1)
    name = f"bench_server_{os.getpid()}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def in_threads(clients: int, work: Callable[[int], list[float]]) -> tuple[float, list[float]]:
    """Run ``work(i)`` in ``clients`` threads started together; (seconds, latencies)."""
    latencies: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def run(i: int) -> None:
        barrier.wait()
        mine = work(i)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, latencies


@dataclass
class Seen:
    """One path's measurements, summed over the rounds."""

    seconds: float = 0.0
    append: list[float] = field(default_factory=list)
    load: list[float] = field(default_factory=list)


def measure(
    urls: dict[str, str], clients: int, appends: int, history: int, rounds: int
) -> dict[str, dict[str, float]]:
    """Both paths in ``rounds`` alternating rounds (the first path changes each round), so
    a neighbour's burst on a shared machine lands on both rather than on one."""
    per_client = max(1, appends // clients // rounds)
    loads = max(1, 20 // clients)
    for tag, url in urls.items():
        with PraisonDB(url, auto_migrate=True) as db:
            db.ping()
            db.sessions.create(f"{tag}-history-{clients}")
            for start in range(0, history, 500):
                batch = [
                    {"role": "user", "content": "y" * 200} for _ in range(min(500, history - start))
                ]
                db.messages.extend(f"{tag}-history-{clients}", batch)
    seen = {tag: Seen() for tag in urls}

    def append(url: str, tag: str, r: int, i: int) -> list[float]:
        times = []
        with PraisonDB(url) as db:
            sid = f"{tag}-a-{clients}-{r}-{i}"
            db.sessions.create(sid)
            for n in range(per_client):
                start = time.perf_counter()
                db.messages.append(sid, "user", f"message {n} " + "x" * 200)
                times.append(time.perf_counter() - start)
        return times

    def load(url: str, tag: str, i: int) -> list[float]:
        times = []
        with PraisonDB(url) as db:
            for _ in range(loads):
                start = time.perf_counter()
                assert len(db.messages.list(f"{tag}-history-{clients}")) == history
                times.append(time.perf_counter() - start)
        return times

    for r in range(rounds):
        order = list(urls.items()) if r % 2 == 0 else list(urls.items())[::-1]
        for tag, url in order:
            seconds, times = in_threads(clients, partial(append, url, tag, r))
            seen[tag].seconds += seconds
            seen[tag].append += times
            seen[tag].load += in_threads(clients, partial(load, url, tag))[1]
    result = {}
    for tag, got in seen.items():
        result[tag] = {
            "append_per_s": len(got.append) / got.seconds,
            "append_p50": percentile(got.append, 0.5) * 1000,
            "append_p99": percentile(got.append, 0.99) * 1000,
            "load_p50": percentile(got.load, 0.5) * 1000,
            "load_p99": percentile(got.load, 0.99) * 1000,
        }
    return result


def floor(server_url: str, calls: int = 2000) -> float:
    """p50 ms of ``GET /healthz`` (no store, no worker thread) with the client's own HTTP
    library: the fixed cost of one round trip, beside which the append ratio is read."""
    import httpcore

    url = server_url.replace("praisondb+http://", "http://", 1) + "/healthz"
    times = []
    with httpcore.ConnectionPool() as pool:
        for _ in range(calls):
            start = time.perf_counter()
            pool.request("GET", url)
            times.append(time.perf_counter() - start)
    return percentile(times, 0.5) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--appends", type=int, default=400, help="appends per row, all clients")
    parser.add_argument("--clients", default="1,100", help="comma-separated client counts")
    parser.add_argument("--history", type=int, default=1000, help="messages loaded whole")
    parser.add_argument(
        "--rounds", type=int, default=5, help="alternating rounds of the two paths per row"
    )
    parser.add_argument(
        "--store",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="the store behind both paths (postgres: $PRAISONDB_TEST_POSTGRES_URL's server)",
    )
    args = parser.parse_args()
    counts = [int(c) for c in args.clients.split(",")]
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        url = stack.enter_context(store_url(args.store, tmp))
        server_url = stack.enter_context(served(url, tmp / "server.log"))
        rows = []
        for clients in counts:
            both = measure(
                {"d": url, "s": server_url}, clients, args.appends, args.history, args.rounds
            )
            rows.append((clients, both["d"], both["s"]))
        round_trip = floor(server_url)
    load = os.getloadavg()[0]
    print(
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, load average {load:.1f}; store: {args.store}"
    )
    print()
    print(
        "| clients | path | appends/s | append p50 ms | append p99 ms | load p50 ms | load p99 ms |"
    )
    print("|---|---|---|---|---|---|---|")
    for clients, direct, remote in rows:
        for name, r in (("direct", direct), ("server", remote)):
            print(
                f"| {clients} | {name} | {r['append_per_s']:,.0f} | {r['append_p50']:.2f} | "
                f"{r['append_p99']:.2f} | {r['load_p50']:.1f} | {r['load_p99']:.1f} |"
            )
        ratio_a = direct["append_per_s"] / remote["append_per_s"]
        ratio_p = remote["append_p50"] / direct["append_p50"]
        ratio_l = remote["load_p50"] / direct["load_p50"]
        print(f"| {clients} | ratio | {ratio_a:.2f}x | {ratio_p:.2f}x | | {ratio_l:.2f}x | |")
    print()
    print(f"HTTP round trip to the server (GET /healthz, no store): {round_trip:.3f} ms p50")


if __name__ == "__main__":
    main()
