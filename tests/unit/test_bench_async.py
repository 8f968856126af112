"""tools/bench_async.py measures what it says: its raw drivers do the store's work (a
gap-free seq, rows the store itself reads back) and load the same Message objects, and
the script runs end to end. A raw path doing less would flatter the ratios."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from praisondb.aio import AsyncPraisonDB
from tests.backends import TestBackend

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

from bench_async_raw import RAWS  # noqa: E402 - tools/ is not a package

BENCH_BACKENDS = ("sqlite", "postgres", "mysql", "redis", "mongodb")


@pytest.mark.backends(*BENCH_BACKENDS)
def test_raw_appends_are_the_stores_work_and_loads_match(
    backend: TestBackend, backend_url: str, uid: str
) -> None:
    async def go() -> None:
        async with AsyncPraisonDB(backend_url, auto_migrate=True) as db:
            await db.ping()
            raw = RAWS[backend.name](backend_url)
            await raw.open()
            try:
                sids = [f"{uid}-raw-{i}" for i in range(3)]
                for sid in sids:
                    await raw.create_session(sid)

                async def writer(sid: str) -> list[int]:
                    return [
                        (await raw.append(sid, "user", f"m{i}", {"i": i})).seq for i in range(6)
                    ]

                # two writers per session at once: the seq must still come out gap-free
                seqs = await asyncio.gather(*(writer(s) for s in sids + sids))
                for k, sid in enumerate(sids):
                    assert sorted(seqs[k] + seqs[k + len(sids)]) == list(range(1, 13))
                    loaded = await raw.load(sid)
                    assert [m.seq for m in loaded] == list(range(1, 13))
                    if backend.name in ("sqlite", "postgres", "mysql"):
                        # the same tables: the store reads the raw rows and counters back
                        assert await db.messages.list(sid) == loaded
                        assert (await db.sessions.get(sid)).message_count == 12

                mine = (await db.sessions.create()).id
                await db.messages.extend(
                    mine,
                    [{"role": "user", "content": f"s{i}", "metadata": {"i": i}} for i in range(5)],
                )
                assert await raw.load(mine) == await db.messages.list(mine)
            finally:
                await raw.close()

    asyncio.run(go())


def test_bench_async_runs_end_to_end_on_sqlite() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "bench_async.py"),
            "--backends",
            "sqlite",
            "--sessions",
            "6",
            "--appends",
            "2",
            "--tasks",
            "3",
            "--rounds",
            "1",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    tables = [line for line in result.stdout.splitlines() if line.startswith("| SQLite")]
    assert len(tables) == 3, result.stdout  # appends, loop lag, load
    assert all("nan" not in line for line in tables), result.stdout
