"""The archive format: exact round trips, and damage caught by line number before import."""

from __future__ import annotations

import gzip
from datetime import datetime, timezone
from pathlib import Path

import orjson
import pytest

from praisondb import PraisonDB, transfer
from praisondb.model import Message
from praisondb.transfer.archive import (
    FORMAT_VERSION,
    ArchiveError,
    ArchiveReader,
    canonical_message,
    read_header,
)

DATA = Path(__file__).resolve().parents[1] / "data"


def _db_with_sessions(count: int = 3, per_session: int = 5) -> PraisonDB:
    db = PraisonDB("memory://")
    for s in range(count):
        db.sessions.create(f"s{s}", user_id="u")
        db.messages.extend(
            f"s{s}", [{"role": "user", "content": f"{s}-{i} ✓"} for i in range(per_session)]
        )
    db.state.set("k", [1, 2], scope="app")
    return db


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def _line_of(lines: list[bytes], needle: bytes) -> int:
    return next(i for i, line in enumerate(lines) if needle in line)


def test_canonical_message_is_stable() -> None:
    """Changing this spelling breaks every stored digest: it is part of the format."""
    message = Message(
        "s",
        "user",
        "hé",
        {"b": 1, "a": {"z": 0, "y": None}},
        None,
        "m1",
        7,
        datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
    )
    assert canonical_message(message) == (
        b'{"content":"h\xc3\xa9","created_at":"2024-01-02T03:04:05.000000+00:00","id":"m1",'
        b'"metadata":{"a":{"y":null,"z":0},"b":1},"role":"user","run_id":null,"seq":7}'
    )


@pytest.mark.parametrize("name", ["dump.jsonl", "dump.jsonl.gz"])
def test_round_trip_plain_and_gzip(tmp_path: Path, name: str) -> None:
    source = _db_with_sessions()
    path = tmp_path / name
    report = transfer.export(source, path)
    assert report.sessions_seen == 3 and report.messages_copied == 15
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    assert not list(tmp_path.glob("*.partial"))
    scan = ArchiveReader(path).scan()
    assert scan.ok and (scan.sessions, scan.messages, scan.state_entries) == (3, 15, 1)
    target = PraisonDB("memory://")
    imported = transfer.import_(path, target)
    assert imported.verify is not None and imported.verify.ok
    assert transfer.verify(source, target).ok


def test_corrupted_line_is_reported_and_nothing_is_imported(tmp_path: Path) -> None:
    path = tmp_path / "dump.jsonl"
    transfer.export(_db_with_sessions(), path)
    lines = _lines(path)
    bad = _line_of(lines, b'"1-2 ')
    lines[bad] = lines[bad][:40] + b"\n"  # cut in the middle of a record
    path.write_bytes(b"".join(lines))
    target = PraisonDB("memory://")
    with pytest.raises(ArchiveError, match=f"line {bad + 1}"):
        transfer.import_(path, target)
    assert target.sessions.count() == 0


def test_skip_damaged_imports_only_intact_sessions(tmp_path: Path) -> None:
    path = tmp_path / "dump.jsonl"
    transfer.export(_db_with_sessions(), path)
    lines = _lines(path)
    bad = _line_of(lines, b'"1-3 ')
    lines[bad] = lines[bad].replace(b"1-3", b"1-X")  # valid JSON, altered content
    path.write_bytes(b"".join(lines))
    target = PraisonDB("memory://")
    report = transfer.import_(path, target, skip_damaged=True)
    assert not report.ok
    assert any("digest" in d and "s1" in d for d in report.damage), report.damage
    assert not target.sessions.exists("s1")  # nothing half-imported for the damaged session
    assert target.sessions.exists("s0") and target.sessions.exists("s2")
    assert target.messages.count("s0") == 5
    assert report.verify is not None and report.verify.ok


def test_truncated_archive(tmp_path: Path) -> None:
    path = tmp_path / "dump.jsonl"
    transfer.export(_db_with_sessions(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    scan = ArchiveReader(path).scan()
    assert not scan.complete and not scan.ok
    assert any("end record" in str(d) for d in scan.damage)
    with pytest.raises(ArchiveError, match="nothing was imported"):
        transfer.import_(path, PraisonDB("memory://"))


def test_truncated_gzip(tmp_path: Path) -> None:
    path = tmp_path / "dump.jsonl.gz"
    transfer.export(_db_with_sessions(10, 50), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])
    scan = ArchiveReader(path).scan()
    assert not scan.ok
    assert any("cut short" in str(d) or "end record" in str(d) for d in scan.damage)


def test_future_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.jsonl"
    header = {"format": "praisondb.archive", "version": FORMAT_VERSION + 1}
    path.write_bytes(orjson.dumps(header) + b"\n" + b'{"type":"end"}\n')
    with pytest.raises(ArchiveError, match=f"version {FORMAT_VERSION + 1} is newer"):
        transfer.import_(path, PraisonDB("memory://"))


def test_not_an_archive(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"hello": 1}\n')
    with pytest.raises(ArchiveError, match="not a praisondb archive"):
        read_header(path)
    gz = tmp_path / "x.gz"
    gz.write_bytes(gzip.compress(b"plain text\n"))
    with pytest.raises(ArchiveError, match="not a praisondb archive"):
        read_header(gz)


def test_unknown_record_type_is_damage(tmp_path: Path) -> None:
    lines = _lines(DATA / "archive-v1.jsonl")
    lines.insert(-1, b'{"type":"mystery"}\n')
    path = tmp_path / "odd.jsonl"
    path.write_bytes(b"".join(lines))
    scan = ArchiveReader(path).scan()
    assert [d.line for d in scan.damage][:1] == [len(lines) - 1]
    assert "unknown record type" in str(scan.damage[0])


def _read_everything(reader: ArchiveReader) -> None:
    for item in reader.blocks():
        if not isinstance(item, list):
            list(item.messages())


def test_the_import_walks_the_scans_grammar(tmp_path: Path) -> None:
    """blocks() without a scan refuses what the scan refuses, not only unreadable lines:
    both walk one grammar (here: a message of another session inside s1's block)."""
    path = tmp_path / "dump.jsonl"
    transfer.export(_db_with_sessions(), path)
    lines = _lines(path)
    bad = _line_of(lines, b'"1-3 ')
    lines[bad] = lines[bad].replace(b'"session_id":"s1"', b'"session_id":"s2"')
    path.write_bytes(b"".join(lines))
    reader = ArchiveReader(path)
    scan = reader.scan()
    assert (scan.damage[0].line, scan.damage[0].session_id) == (bad + 1, "s1")
    assert "message belongs to session 's2'" in scan.damage[0].reason
    assert scan.damaged_sessions == {"s1"}, scan.damage
    with pytest.raises(ArchiveError, match=f"line {bad + 1}: message belongs to session 's2'"):
        _read_everything(reader)
    kept = [i.info.id for i in reader.blocks(scan) if not isinstance(i, list)]
    assert sorted(kept) == ["s0", "s2"]
