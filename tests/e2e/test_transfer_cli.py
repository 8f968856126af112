"""``praisondb copy|export|import|verify`` end to end on SQLite files, plus the edge cases:
dry runs, conflicts, self-copies, redaction, exit codes, bounded batches."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result

from praisondb import ConfigError, PraisonDB, transfer
from praisondb.cli import cli
from praisondb.cli.transfer import ProgressLine
from praisondb.model import Message, SessionInfo
from praisondb.stores import open_conversation_store
from praisondb.stores.base import BulkSessionLoader
from praisondb.transfer import ConflictAbort, Progress


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _output(result: Result) -> str:
    return result.stdout + (result.stderr or "")


@pytest.fixture
def source(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'source.db'}"
    with PraisonDB(url, auto_migrate=True) as db:
        for s in range(4):
            db.sessions.create(f"s{s}", user_id=f"u{s % 2}", agent="support")
            db.messages.extend(
                f"s{s}", [{"role": "user", "content": f"hello {s}-{i}"} for i in range(30)]
            )
        db.state.set("theme", "dark", scope="user:u0", ttl=3600)
    return url


@pytest.fixture
def target(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'target.db'}"
    with PraisonDB(url, auto_migrate=True) as db:
        db.ping()
    return url


def test_dry_run_prints_and_writes_nothing(source: str, target: str) -> None:
    result = run("copy", source, target, "--dry-run")
    assert result.exit_code == 0, _output(result)
    assert "dry run" in result.stdout
    assert "would move 120" in result.stdout
    assert "bytes:" in result.stdout
    with PraisonDB(target) as db:
        assert db.sessions.count() == 0
        assert db.state_store.list_entries() == []  # not even a cursor


def test_copy_json_then_verify(source: str, target: str) -> None:
    result = run("copy", source, target, "--json", "--batch-size", "7")
    assert result.exit_code == 0, _output(result)
    report = orjson.loads(result.stdout)
    assert report["sessions_created"] == 4 and report["messages_copied"] == 120
    assert report["verify"]["ok"] is True and report["ok"] is True
    assert report["state_copied"] == 1
    assert run("verify", source, target).exit_code == 0
    again = orjson.loads(run("copy", source, target, "--json").stdout)
    assert again["messages_copied"] == 0 and again["sessions_created"] == 0


def test_filters(source: str, target: str) -> None:
    result = run("copy", source, target, "--user-id", "u1", "--json")
    assert result.exit_code == 0, _output(result)
    report = orjson.loads(result.stdout)
    assert report["sessions_created"] == 2 and report["state_copied"] == 0
    one = orjson.loads(run("copy", source, target, "--session", "s0", "--json").stdout)
    # no session:s0 state; s0 belongs to u0, whose scope comes along (what s0 reads)
    assert one["sessions_created"] == 1 and one["state_copied"] == 1
    with PraisonDB(target) as db:
        assert sorted(s.id for s in db.sessions.list().items) == ["s0", "s1", "s3"]
        assert db.state.get("theme", scope="user:u0") == "dark"
        assert db.state.list("user:u1") == []


def test_verify_names_the_session_that_differs(source: str, target: str) -> None:
    assert run("copy", source, target, "--no-verify").exit_code == 0
    with PraisonDB(target) as db:
        db.messages.delete("s2", from_seq=4, to_seq=4)
    result = run("verify", source, target)
    assert result.exit_code == 1
    assert "s2:" in result.stdout and "missing in target (seq 4)" in result.stdout
    as_json = orjson.loads(run("verify", source, target, "--json").stdout)
    assert [d["session_id"] for d in as_json["differences"]] == ["s2"]


def test_self_copy_is_refused(source: str, tmp_path: Path) -> None:
    bare = str(tmp_path / "source.db")
    result = run("copy", source, bare)
    assert result.exit_code == 2
    assert "onto itself" in _output(result)
    store = open_conversation_store("memory://")
    with pytest.raises(ConfigError, match="onto itself"):
        transfer.copy(store, store)


def test_passwords_never_printed(source: str) -> None:
    secret_url = "postgresql://postgres:s3cr3t-pw@127.0.0.1:5432/praisondb_no_such_db"
    result = run("copy", source, secret_url, "--json")
    assert result.exit_code == 2
    assert "s3cr3t-pw" not in _output(result)
    assert "error:" in _output(result)


def test_export_import_cli_and_damage(source: str, target: str, tmp_path: Path) -> None:
    path = tmp_path / "dump.jsonl"
    assert run("export", source, str(path)).exit_code == 0
    lines = path.read_bytes().splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if b'"hello 2-7"' in line)
    lines[index] = b'{"type":"message", broken\n'
    path.write_bytes(b"".join(lines))
    refused = run("import", str(path), target)
    assert refused.exit_code == 2
    assert f"line {index + 1}" in _output(refused)
    partial = run("import", str(path), target, "--skip-damaged", "--json")
    assert partial.exit_code == 1
    report = orjson.loads(partial.stdout)
    assert report["sessions_created"] == 3 and report["damage"]
    with PraisonDB(target) as db:
        assert not db.sessions.exists("s2")


def test_conflicts(source: str, target: str) -> None:
    with PraisonDB(target) as db:  # an unrelated session that happens to share an id
        db.sessions.create("s1", user_id="someone-else")
        db.messages.append("s1", "user", "not from the source")
    skipped = run("copy", source, target, "--json")
    assert skipped.exit_code == 1
    report = orjson.loads(skipped.stdout)
    assert report["sessions_conflicting"] == 1
    assert report["conflicts"][0]["session_id"] == "s1"
    assert report["verify"]["ok"] is True  # the rest was copied and checks out
    failed = run("copy", source, target, "--on-conflict", "fail", "--full")
    assert failed.exit_code == 2 and "s1" in _output(failed)
    with pytest.raises(ConflictAbort):
        transfer.copy(source, target, on_conflict="fail", full=True)
    overwritten = run("copy", source, target, "--on-conflict", "overwrite", "--full", "--json")
    assert overwritten.exit_code == 0, _output(overwritten)
    assert orjson.loads(overwritten.stdout)["sessions_replaced"] == 1
    assert run("verify", source, target).exit_code == 0


def test_every_command_has_help() -> None:
    for name in ("copy", "export", "import", "verify"):
        result = run(name, "--help")
        assert result.exit_code == 0 and len(result.stdout) > 200


def test_progress_line_shows_rate_and_eta() -> None:
    out = io.StringIO()
    line = ProgressLine("copy", out)
    line(Progress("copy", 3, 10, 500, 1000, 0, 2.0))
    line.close()
    text = out.getvalue()
    assert "500/1,000 messages 50%" in text and "250 msg/s" in text and "ETA 0:00:02" in text
    assert "sessions 3/10" in text


class SpyStore:
    """Wraps a store and records the largest batch it is asked to read or write."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.largest_read = 0
        self.largest_write = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def list_messages(self, session_id: str, **kwargs: Any) -> list[Message]:
        assert kwargs.get("limit") is not None, "an unbounded read"
        found: list[Message] = self.inner.list_messages(session_id, **kwargs)
        self.largest_read = max(self.largest_read, len(found))
        return found

    def put_messages(self, session_id: str, messages: list[Message]) -> int:
        self.largest_write = max(self.largest_write, len(messages))
        inserted: int = self.inner.put_messages(session_id, messages)
        return inserted

    def put_session_batch(self, items: list[tuple[SessionInfo, list[Message]]]) -> int:
        self.largest_write = max(self.largest_write, sum(len(batch) for _, batch in items))
        inserted: int = self.inner.put_session_batch(items)
        return inserted


def test_memory_is_bounded_by_batch_size() -> None:
    """One big session (per-session path) and many small ones (bulk path): no batch > 64."""
    source = PraisonDB("memory://")
    source.sessions.create("big")
    source.messages.extend("big", [{"role": "user", "content": str(i)} for i in range(1000)])
    for n in range(40):
        source.sessions.create(f"small-{n}")
        source.messages.extend(
            f"small-{n}", [{"role": "user", "content": f"x{i}"} for i in range(n % 13)]
        )
    src, dst = SpyStore(source.conversations), SpyStore(open_conversation_store("memory://"))
    assert isinstance(dst, BulkSessionLoader)
    report = transfer.copy(src, dst, batch_size=64)
    assert report.messages_copied == 1000 + sum(n % 13 for n in range(40))
    assert report.verify is not None and report.verify.ok
    assert 0 < src.largest_read <= 64 and 0 < dst.largest_write <= 64
