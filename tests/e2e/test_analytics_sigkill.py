"""An analytics-logging process killed with SIGKILL loses no acknowledged event, doubles none.

The child appends messages through the facade (each append emits a ``message`` event
whose id is the message's) and prints each message id once the append has returned.
The parent waits for a given number of acknowledged ids, kills the child with SIGKILL,
then opens the same analytics directory in this process (chdb allows one process per
directory, so only after the child is dead): the sink replays the dead process's
journal, and every acknowledged message must have exactly one event.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from praisondb.analytics import Analytics
from praisondb.stores.clickhouse import ClickHouseSink
from praisondb.urls import parse_url

CHILD = r"""
import json
import sys
from praisondb import PraisonDB

database_url, analytics_url, options = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
db = PraisonDB(database_url, analytics_url=analytics_url, analytics_options=options)
if analytics_url.startswith("chdb:"):
    db.analytics.ensure_schema()
db.sessions.create("s", user_id="u", agent="a")
out = sys.stdout
out.write("ready\n")
out.flush()
turn = 0
while True:
    if turn % 3 == 0:
        stored = db.messages.extend(
            "s", [{"role": "user", "content": f"m{turn}-{k}"} for k in range(20)]
        )
    else:
        stored = [db.messages.append("s", "assistant", f"m{turn}")]
    out.write("".join(m.id + "\n" for m in stored))
    out.flush()
    turn += 1
"""

START_DEADLINE = 60.0
PROGRESS_DEADLINE = 120.0


def _read_lines(stream: object, lines: queue.Queue[str | None]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        lines.put(line)
    lines.put(None)


def _run_and_kill(
    tmp: Path, analytics_url: str, kill_after: int, options: dict[str, object]
) -> list[str]:
    """Start the child, SIGKILL it after ``kill_after`` acknowledged messages; their ids."""
    stderr = open(tmp / "child.stderr", "wb")  # noqa: SIM115 - closed below
    database_url = f"sqlite:///{tmp / 'c.db'}"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, database_url, analytics_url, json.dumps(options)],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(target=_read_lines, args=(child.stdout, lines), daemon=True)
    reader.start()
    acked: list[str] = []
    try:
        first = lines.get(timeout=START_DEADLINE)
        assert first == "ready\n", (tmp / "child.stderr").read_text(errors="replace")[-3000:]
        deadline = time.monotonic() + PROGRESS_DEADLINE
        while len(acked) < kill_after:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.001))
            assert line is not None, (tmp / "child.stderr").read_text(errors="replace")[-3000:]
            acked.append(line)
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
        while (line := lines.get(timeout=30)) is not None:  # what it acknowledged meanwhile
            acked.append(line)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        stderr.close()
        reader.join(timeout=30)
    # a line cut by the kill has no newline: its append returned, its id is unknown
    return [line[:-1] for line in acked if line.endswith("\n")]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("kill_after", "flush_interval"),
    [(1, 1.0), (700, 1.0), (4000, 0.3), (12000, 1.0)],
    ids=["at-once", "early", "mid-stream", "late"],
)
def test_sigkill_loses_and_doubles_no_acknowledged_event(
    tmp_path: Path, kill_after: int, flush_interval: float
) -> None:
    chdb_url = f"chdb://{tmp_path / 'analytics'}"
    acked = _run_and_kill(tmp_path, chdb_url, kill_after, {"flush_interval": flush_interval})
    assert len(acked) >= kill_after
    sink = ClickHouseSink(parse_url(chdb_url, "analytics"))  # the restart: replays the journal
    _check_exactly_once(sink, acked, tmp_path / "analytics-spool")


def test_sigkill_while_the_server_is_down_replays_spool_and_journal_once(tmp_path: Path) -> None:
    """The HTTP sink (same code): part of the events spooled, part only journaled, then killed."""
    spool = tmp_path / "spool"
    options = {"spool_dir": str(spool), "flush_interval": 0.05, "connect_timeout": 1}
    down = f"clickhouse://127.0.0.1:{closed_port()}"
    acked = _run_and_kill(tmp_path, down, 3000, options)
    names = [p.name for p in spool.iterdir()]
    assert any(n.startswith("journal-") for n in names), names
    assert any(n.startswith("events-") for n in names), names  # the spool overlaps the journal
    sink = ClickHouseSink(
        parse_url(f"chdb://{tmp_path / 'analytics'}", "analytics"), spool_dir=str(spool)
    )
    _check_exactly_once(sink, acked, spool)


def _check_exactly_once(sink: ClickHouseSink, acked: list[str], spool: Path) -> None:
    try:
        sink.flush()
        rows = (
            Analytics(sink)
            .query("SELECT id, count() FROM praisondb.events WHERE type = 'message' GROUP BY id")
            .rows
        )
        stored = {str(event_id): int(n) for event_id, n in rows}
        lost = [event_id for event_id in acked if event_id not in stored]
        doubled = {event_id: n for event_id, n in stored.items() if n != 1}
        assert (len(lost), doubled) == (0, {}), (
            f"{len(lost)} of {len(acked)} acknowledged events lost, e.g. {lost[:3]}"
        )
        # at most the one append the kill interrupted is stored without its acknowledgement
        assert len(stored) - len(acked) in range(0, 21)
        starts = (
            Analytics(sink)
            .query("SELECT count() FROM praisondb.events WHERE type = 'session_start'")
            .rows
        )
        assert starts == [(1,)]
    finally:
        sink.close()
    # replayed, and this clean close leaves none
    assert not [p.name for p in spool.iterdir() if "journal-" in p.name]
