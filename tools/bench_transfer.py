#!/usr/bin/env python
"""Benchmark ``praisondb copy`` SQLite -> PostgreSQL / MySQL against the raw drivers.

    .venv/bin/python tools/bench_transfer.py                      # 10,000 x 100 x ~500 B
    .venv/bin/python tools/bench_transfer.py --sessions 1000 --workers 1,4
    .venv/bin/python tools/bench_transfer.py --sessions 200 --messages 50 \
        --targets served-sqlite,served-postgres --ceiling 0   # through praisondb serve

Builds (once, cached under --dir) a SQLite source of SESSIONS x MESSAGES messages of
about SIZE bytes, then for each target runs, each in a fresh process so peak RSS is
its own: ``transfer.copy`` (messages/s, peak RSS), the same rows loaded by the raw
driver's fastest path (psycopg COPY; PyMySQL executemany) into the same schema, and
optionally ``transfer.verify``. Targets: >= 50,000 msg/s into PostgreSQL, within 2x of
raw COPY, peak RSS < 300 MB. A benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG_ADMIN = os.environ.get(
    "PRAISONDB_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
).replace("postgresql+psycopg://", "postgresql://", 1)
MY_ADMIN = os.environ.get("PRAISONDB_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- source ---------------------------------------------------------------------------------


def build_source(path: Path, sessions: int, messages: int, size: int) -> None:
    from praisondb import PraisonDB
    from praisondb.model import Message, SessionInfo

    tmp = path.with_suffix(".building")
    tmp.unlink(missing_ok=True)
    started = time.perf_counter()
    t0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
    filler = "lorem ipsum dolor sit amet " * (size // 27 + 1)
    with PraisonDB(f"sqlite:///{tmp}", auto_migrate=True) as db:
        store = db.conversations
        for s in range(sessions):
            sid = f"s{s:07d}"
            created = t0 + timedelta(seconds=s)
            store.put_session(
                SessionInfo(
                    sid,
                    user_id=f"u{s % 100}",
                    agent="bench",
                    created_at=created,
                    updated_at=created + timedelta(seconds=messages),
                )
            )
            store.put_messages(
                sid,
                [
                    Message(
                        sid,
                        "user" if i % 2 else "assistant",
                        filler[: size - 60],
                        metadata={"i": i},
                        id=f"{sid}-{i:05d}",
                        seq=i,
                        created_at=created + timedelta(seconds=i, microseconds=i),
                    )
                    for i in range(1, messages + 1)
                ],
            )
            info = store.get_session(sid)
            info.updated_at = created + timedelta(seconds=messages)
            store.put_session(info)
    tmp.rename(path)
    print(f"built {path} in {time.perf_counter() - started:.0f}s", file=sys.stderr)


# -- targets ---------------------------------------------------------------------------------


def create_pg() -> str:
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + "/" + name


def drop_pg(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _my_admin() -> Any:
    import pymysql
    from sqlalchemy.engine import make_url

    url = make_url(MY_ADMIN)
    return pymysql.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 3306,
        user=url.username or "root",
        password=url.password or "",
        autocommit=True,
    )


def create_mysql() -> str:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    with _my_admin() as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    return MY_ADMIN.rsplit("/", 1)[0] + "/" + name


def drop_mysql(url: str) -> None:
    with _my_admin() as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{url.rsplit('/', 1)[1]}`")


class Served:
    """``praisondb serve`` over a store (a served target: ``copy`` goes through HTTP)."""

    def __init__(self, database_url: str, log: Path) -> None:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        cmd = [sys.executable, "-m", "praisondb", "serve", "--database-url", database_url]
        cmd += ["--auto-migrate", "--host", "127.0.0.1", "--port", str(self.port)]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with log.open("ab") as out:
            self.process = subprocess.Popen(cmd, stdout=out, stderr=out, env=env)
        import httpx

        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                sys.exit(f"praisondb serve exited; see {log}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                sys.exit(f"praisondb serve not ready in 60 s; see {log}")
            time.sleep(0.05)  # polling interval

    @property
    def url(self) -> str:
        return f"praisondb+http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def migrate(url: str) -> None:
    from praisondb import PraisonDB

    with PraisonDB(url, auto_migrate=True) as db:
        db.ping()


# -- children (each measured in its own process) ------------------------------------------------


def child_copy(src: str, dst: str, batch_size: int, workers: int, verify: bool) -> dict[str, Any]:
    from praisondb import transfer

    started, cpu = time.perf_counter(), time.process_time()
    report = transfer.copy(src, dst, batch_size=batch_size, workers=workers, verify=False)
    seconds = time.perf_counter() - started
    result = {
        "messages": report.messages_copied,
        "seconds": seconds,
        "rss_mb": peak_rss_mb(),
        "cpu_s": time.process_time() - cpu,
    }
    if verify:
        started = time.perf_counter()
        check = transfer.verify(src, dst, batch_size=batch_size)
        result.update(
            verify_seconds=time.perf_counter() - started,
            verify_ok=check.ok,
            verify_messages=check.messages_checked,
            rss_mb=peak_rss_mb(),
        )
    return result


def _source_rows(src_path: str, batch: int) -> Any:
    conn = sqlite3.connect(src_path)
    cur = conn.execute(
        "SELECT session_id, seq, id, role, content_kind, content, metadata, run_id, created_at "
        "FROM praisondb_messages ORDER BY session_id, seq"
    )
    while rows := cur.fetchmany(batch):
        yield rows
    conn.close()


def _sessions(src_path: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(src_path)
    rows = conn.execute(
        "SELECT id, user_id, agent, title, metadata, parent_id, forked_at_seq, created_at, "
        "updated_at, message_count, last_seq FROM praisondb_sessions"
    ).fetchall()
    conn.close()
    return rows


def _ts(value: Any) -> datetime:
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value / 1_000_000, timezone.utc)
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def child_raw_pg(src_path: str, dst: str, batch: int) -> dict[str, Any]:
    """The same rows, read with sqlite3 and written with psycopg COPY (one transaction)."""
    import psycopg
    from psycopg.types.json import Jsonb

    url = dst.replace("postgresql+psycopg://", "postgresql://")
    started = time.perf_counter()
    count = 0
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy(
            "COPY praisondb_sessions (id, user_id, agent, title, metadata, parent_id, "
            "forked_at_seq, created_at, updated_at, message_count, last_seq) FROM STDIN"
        ) as copy:
            for row in _sessions(src_path):
                copy.write_row(
                    (
                        *row[:4],
                        Jsonb(json.loads(row[4])),
                        row[5],
                        row[6],
                        _ts(row[7]),
                        _ts(row[8]),
                        row[9],
                        row[10],
                    )
                )
        with cur.copy(
            "COPY praisondb_messages (session_id, seq, id, role, content_kind, content, "
            "metadata, run_id, created_at) FROM STDIN"
        ) as copy:
            for rows in _source_rows(src_path, batch):
                for r in rows:
                    copy.write_row((*r[:6], Jsonb(json.loads(r[6])), r[7], _ts(r[8])))
                count += len(rows)
        conn.commit()
    seconds = time.perf_counter() - started
    return {"messages": count, "seconds": seconds, "rss_mb": peak_rss_mb()}


def child_pg_server_only(src_path: str, dst: str, rows: int) -> dict[str, Any]:
    """PostgreSQL's own ingest ceiling: the first ``rows`` messages, already encoded as a
    binary COPY stream in memory, sent in one COPY. The client does nothing per row, so
    this is what the server alone can take (FK check, two unique indexes, jsonb, WAL)."""
    import psycopg

    from praisondb.stores.sql.types import pg_json_bytes

    url = dst.replace("postgresql+psycopg://", "postgresql://")
    columns = (
        "COPY praisondb_messages (session_id, seq, id, role, content_kind, content, "
        "metadata, run_id, created_at) FROM STDIN (FORMAT BINARY)"
    )
    types = ["text", "int8", "text", "text", "int2", "text", "bytea", "text", "timestamptz"]
    chunks: list[bytes] = []

    class Capture(psycopg.copy.Writer):
        def write(self, data: Any) -> None:
            chunks.append(bytes(data))

    count = 0
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        sessions = _sessions(src_path)
        with cur.copy(
            "COPY praisondb_sessions (id, user_id, agent, title, metadata, parent_id, "
            "forked_at_seq, created_at, updated_at, message_count, last_seq) FROM STDIN"
        ) as copy:
            for row in sessions:
                copy.write_row((*row[:4], "{}", row[5], row[6], _ts(row[7]), _ts(row[8]), *row[9:]))
        conn.commit()
        encoder = psycopg.connect(url)
        with encoder.cursor().copy(columns, writer=Capture()) as copy:
            copy.set_types(types)
            for batch in _source_rows(src_path, 10_000):
                for r in batch:
                    meta = b"\x01" + pg_json_bytes(json.loads(r[6]))
                    copy.write_row((*r[:6], meta, r[7], _ts(r[8])))
                count += len(batch)
                if count >= rows:
                    break
        encoder.pgconn.finish()  # the capture never reached the server
        started = time.perf_counter()
        with cur.copy(columns) as copy:
            for chunk in chunks:
                copy.write(chunk)
        conn.commit()
        seconds = time.perf_counter() - started
    return {"messages": count, "seconds": seconds, "rss_mb": peak_rss_mb()}


def child_raw_mysql(src_path: str, dst: str, batch: int) -> dict[str, Any]:
    """The same rows, read with sqlite3 and written with PyMySQL executemany."""
    import pymysql
    from sqlalchemy.engine import make_url

    url = make_url(dst)
    started = time.perf_counter()
    count = 0
    conn = pymysql.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 3306,
        user=url.username or "root",
        password=url.password or "",
        database=url.database,
        charset="utf8mb4",
    )
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO praisondb_sessions (id, user_id, agent, title, metadata, parent_id, "
            "forked_at_seq, created_at, updated_at, message_count, last_seq) VALUES "
            "(%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
            [
                (
                    *r[:7],
                    _ts(r[7]).replace(tzinfo=None),
                    _ts(r[8]).replace(tzinfo=None),
                    r[9],
                    r[10],
                )
                for r in _sessions(src_path)
            ],
        )
        for rows in _source_rows(src_path, batch):
            cur.executemany(
                "INSERT INTO praisondb_messages (session_id, seq, id, role, content_kind, "
                "content, metadata, run_id, created_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                [(*r[:8], _ts(r[8]).replace(tzinfo=None)) for r in rows],
            )
            count += len(rows)
    conn.commit()
    conn.close()
    seconds = time.perf_counter() - started
    return {"messages": count, "seconds": seconds, "rss_mb": peak_rss_mb()}


def run_child(*args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args], check=False, capture_output=True, text=True
    )
    if out.returncode != 0:
        sys.exit(f"child {args[0]} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def served_rows(
    target: str, src_url: str, directory: Path, args: argparse.Namespace
) -> list[tuple[str, str, dict[str, Any]]]:
    """``copy`` into ``praisondb serve`` over a fresh SQLite file or PostgreSQL database."""
    rows: list[tuple[str, str, dict[str, Any]]] = []
    for workers in [int(w) for w in args.workers.split(",")]:
        if target == "served-postgres":
            store, drop = create_pg(), drop_pg
        else:
            store, drop = f"sqlite:///{directory / f'served-{uuid.uuid4().hex[:8]}.db'}", None
        server = Served(store, directory / "serve.log")
        try:
            batch = str(args.batch_size)
            verify = "1" if args.verify else "0"
            result = run_child("copy", src_url, server.url, batch, str(workers), verify)
            rows.append((target, f"praisondb copy, {workers} worker(s)", result))
            print(rows[-1], file=sys.stderr)
        finally:
            server.stop()
            if drop is not None:
                drop(store)
            else:
                Path(store.removeprefix("sqlite:///")).unlink(missing_ok=True)
    return rows


# -- main ----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--size", type=int, default=500, help="approximate bytes per message")
    parser.add_argument(
        "--targets",
        default="postgres,mysql",
        help="comma-separated: postgres, mysql, served-sqlite, served-postgres (the last two "
        "copy into `praisondb serve` over that store, through praisondb+http://)",
    )
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--workers", default="1,4", help="comma-separated worker counts")
    parser.add_argument("--verify", action="store_true", help="also time transfer.verify")
    parser.add_argument(
        "--ceiling",
        type=int,
        default=100_000,
        help="messages for the PostgreSQL server-only ceiling row (0: skip it)",
    )
    parser.add_argument("--dir", default=str(Path(tempfile.gettempdir()) / "praisondb-bench"))
    parser.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        kind, *rest = args.child
        if kind == "copy":
            src, dst, batch, workers, verify = rest
            result = child_copy(src, dst, int(batch), int(workers), verify == "1")
        elif kind == "raw-pg":
            result = child_raw_pg(rest[0], rest[1], int(rest[2]))
        elif kind == "pg-server-only":
            result = child_pg_server_only(rest[0], rest[1], int(rest[2]))
        else:
            result = child_raw_mysql(rest[0], rest[1], int(rest[2]))
        print(json.dumps(result))
        return

    directory = Path(args.dir)
    directory.mkdir(parents=True, exist_ok=True)
    source = directory / f"source-{args.sessions}x{args.messages}x{args.size}.db"
    if not source.exists():
        build_source(source, args.sessions, args.messages, args.size)
    src_url = f"sqlite:///{source}"
    total = args.sessions * args.messages
    rows: list[tuple[str, str, dict[str, Any]]] = []
    makers = {
        "postgres": (create_pg, drop_pg, "raw-pg", "psycopg COPY"),
        "mysql": (create_mysql, drop_mysql, "raw-mysql", "PyMySQL executemany"),
    }
    for target in [t.strip() for t in args.targets.split(",") if t.strip()]:
        if target.startswith("served-"):
            rows += served_rows(target, src_url, directory, args)
            continue
        create, drop, raw_kind, raw_label = makers[target]
        for workers in [int(w) for w in args.workers.split(",")]:
            dst = create()
            try:
                migrate(dst)
                result = run_child(
                    "copy",
                    src_url,
                    dst,
                    str(args.batch_size),
                    str(workers),
                    "1" if args.verify else "0",
                )
                rows.append((target, f"praisondb copy, {workers} worker(s)", result))
                print(rows[-1], file=sys.stderr)
            finally:
                drop(dst)
        dst = create()
        try:
            migrate(dst)
            result = run_child(raw_kind, str(source), dst, str(args.batch_size))
            rows.append((target, f"raw {raw_label}", result))
            print(rows[-1], file=sys.stderr)
        finally:
            drop(dst)
        if target == "postgres" and args.ceiling > 0:
            dst = create()
            try:
                migrate(dst)
                result = run_child("pg-server-only", str(source), dst, str(args.ceiling))
                rows.append((target, "server only: pre-encoded COPY", result))
                print(rows[-1], file=sys.stderr)
            finally:
                drop(dst)

    print(
        f"\nSQLite source: {args.sessions:,} sessions x {args.messages} messages "
        f"(~{args.size} B) = {total:,} messages; batch size {args.batch_size}\n"
    )
    print(
        "| target | loader | messages | seconds | messages/s | vs raw | client CPU us/msg "
        "| peak RSS MB | verify s |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    raw_rates = {
        target: r["messages"] / r["seconds"]
        for target, label, r in rows
        if label.startswith("raw") and r["seconds"]
    }
    for target, label, r in rows:
        rate = r["messages"] / r["seconds"] if r["seconds"] else 0
        ratio = f"{rate / raw_rates[target]:.2f}" if raw_rates.get(target) else "-"
        cpu = f"{r['cpu_s'] / r['messages'] * 1e6:.1f}" if r.get("cpu_s") and r["messages"] else "-"
        verify = (
            f"{r['verify_seconds']:.1f}" + ("" if r.get("verify_ok", True) else " FAILED")
            if "verify_seconds" in r
            else "-"
        )
        print(
            f"| {target} | {label} | {r['messages']:,} | {r['seconds']:.1f} | {rate:,.0f} | "
            f"{ratio} | {cpu} | {r['rss_mb']:.0f} | {verify} |"
        )
    print(f"\nload average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
