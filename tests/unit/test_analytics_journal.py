"""The analytics journal: segments, what replay reads back, who owns a segment, when it goes."""

from __future__ import annotations

import math
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from praisondb.analytics.journal import Journal, Watermark, abandoned, encode_row, read_rows
from praisondb.analytics.schema import EVENT_COLUMNS
from praisondb.analytics.spool import Claimed, Spool
from praisondb.model import Event
from praisondb.stores.clickhouse import ClickHouseSink
from praisondb.urls import parse_url


def journal_files(directory: Path) -> list[Path]:
    if not directory.exists():
        return []
    return sorted(p for p in directory.iterdir() if p.name.startswith("journal-"))


def write(journal: Journal, events: list[Event]) -> None:
    for event in events:
        line = encode_row(event)
        with journal.lock:
            journal.write(line)


def test_rows_read_back_up_to_the_padding_and_a_torn_line_is_skipped(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    plain = Event("message", session_id="s", role="user", attributes={"seq": 1})
    odd = Event(
        "run",
        session_id="s\ud800",  # a lone surrogate: JSON cannot hold it as it is
        latency_ms=math.nan,
        attributes={1: {2}},  # type: ignore[dict-item]
    )
    write(journal, [plain, odd])
    (path,) = journal_files(tmp_path)
    data = path.read_bytes()
    assert len(data) >= 1024 * 1024 and data.rstrip(b"\x00").count(b"\n") == 2
    rows, torn = read_rows(data + b'["cut-off", "2026-')
    assert torn == 0  # the padding ends the segment before the appended bytes
    rows, torn = read_rows(data.rstrip(b"\x00") + b'["cut-off", "2026-')
    assert torn == 1
    assert [r[0] for r in rows] == [plain.id, odd.id]
    assert all(len(r) == len(EVENT_COLUMNS) for r in rows)
    assert rows[0][13] == {"seq": 1} and rows[1][3] == "s?" and rows[1][10] == 0.0
    journal.close(mark=0)  # nothing settled: the segment stays for the next start
    assert journal_files(tmp_path) == [path]
    columns = list(Spool.batches(Claimed(path)))
    assert columns[0][0] == [plain.id, odd.id]


def test_segments_roll_over_and_go_once_their_events_settle(tmp_path: Path) -> None:
    journal = Journal(tmp_path, segment_bytes=4096)
    events = [Event("message", session_id="s", attributes={"i": i}) for i in range(100)]
    write(journal, events)
    journal.rotate()
    segments = journal.pending()
    assert segments > 3 and len(journal_files(tmp_path)) == segments
    journal.release(50)
    left = journal.pending()
    assert 0 < left < segments
    rows = [r for p in journal_files(tmp_path) for r in read_rows(p.read_bytes())[0]]
    assert {r[0] for r in rows} >= {e.id for e in events[50:]}  # every unsettled one kept
    journal.release(100)
    assert journal.pending() == 0 and journal_files(tmp_path) == []
    write(journal, events[:1])
    journal.close(mark=101)
    assert journal_files(tmp_path) == []


def test_watermark_moves_over_contiguous_settled_ranges_only() -> None:
    mark = Watermark()
    assert mark.settled(10, 5) == 0
    assert mark.settled(0, 4) == 4
    assert mark.settled(4, 6) == 15
    assert mark.settled(15, 0) == 15


def test_a_journal_that_cannot_be_written_does_not_break_record(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("x")
    journal = Journal(not_a_directory)
    write(journal, [Event("message"), Event("message")])
    assert journal.total == 2 and journal.broken and "Error" in journal.broken


CHILD = r"""
import sys
from pathlib import Path
from praisondb.analytics.journal import Journal, encode_row
from praisondb.model import Event
journal = Journal(Path(sys.argv[1]))
with journal.lock:
    journal.write(encode_row(Event("message")))
print("written", flush=True)
sys.stdin.readline()
"""


def test_a_segment_is_abandoned_only_once_its_writer_is_dead(tmp_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "written\n"
        (path,) = journal_files(tmp_path)
        assert not abandoned(path)  # its writer holds the lock
        assert not list(Spool(tmp_path).claim())
        child.kill()
        child.wait(timeout=30)
        assert abandoned(path)
        claimed = list(Spool(tmp_path).claim())
        assert [len(batch[0]) for c in claimed for batch in Spool.batches(c)] == [1]
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    mine = Journal(tmp_path / "mine")
    write(mine, [Event("message")])
    (own,) = journal_files(tmp_path / "mine")
    assert not abandoned(own)  # this process writes it
    mine.close(mark=1)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("journal", [True, False])
def test_sink_journal_is_released_as_events_settle_and_gone_after_close(
    tmp_path: Path, journal: bool
) -> None:
    spool = tmp_path / "spool"
    sink = ClickHouseSink(
        parse_url(f"http://127.0.0.1:{closed_port()}", "analytics"),
        spool_dir=str(spool),
        connect_timeout=1,
        journal=journal,
    )
    try:
        assert journal_files(spool) == []  # nothing recorded: no file
        for i in range(300):
            sink.record(Event("message", session_id="s", attributes={"i": i}))
        assert bool(journal_files(spool)) is journal
        sink.flush()  # the target is down: spooled (fsynced), so the journal may go
        sink.flush()  # the next cycle rotates the segment written meanwhile
        stats = sink.stats()
        assert stats["spooled"] == 300 and stats["journal_segments"] == 0
        assert stats["journal"] == ("on" if journal else "off")
        assert all(read_rows(p.read_bytes())[0] == [] for p in journal_files(spool))
    finally:
        sink.close()
    assert journal_files(spool) == []
