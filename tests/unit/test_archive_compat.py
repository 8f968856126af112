"""Archives made by earlier releases stay readable: tests/data holds one per format version."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from praisondb import PraisonDB, transfer
from praisondb.transfer.archive import ArchiveReader

DATA = Path(__file__).resolve().parents[1] / "data"


def test_version_1_archive_imports_exactly() -> None:
    path = DATA / "archive-v1.jsonl"
    assert ArchiveReader(path).scan().ok
    with PraisonDB("memory://") as db:
        report = transfer.import_(path, db)
        assert report.verify is not None and report.verify.ok
        assert (report.sessions_created, report.messages_copied, report.state_copied) == (2, 3, 2)
        main = db.sessions.get("v1-main")
        assert main.title == "Order 🎁"
        assert main.metadata == {"a.b": {"$c": [1, 2.5, None, True]}}
        assert main.created_at == datetime(2024, 6, 1, 12, 0, 0, 1, tzinfo=timezone.utc)
        assert (main.message_count, main.last_seq) == (3, 4)
        messages = db.messages.list("v1-main")
        assert [(m.id, m.seq, m.role) for m in messages] == [
            ("v1-m1", 1, "user"),
            ("v1-m2", 2, "assistant"),
            ("v1-m4", 4, "tool"),
        ]
        assert messages[0].content == "héllo 👋"
        assert messages[1].content == [{"type": "text", "text": "hi"}]
        assert messages[1].created_at.microsecond == 123457
        branch = db.sessions.get("v1-branch")
        assert (branch.parent_id, branch.forked_at_seq) == ("v1-main", 2)
        assert db.runs.get("v1-run").ended_at == datetime(2024, 6, 1, 12, 0, 3, tzinfo=timezone.utc)
        assert db.checkpoints.get("v1-cp").state == {"cart": ["mug"]}
        assert db.conversations.list_spans(session_id="v1-main")[0].attributes == {"k": 1}
        theme = db.state.get_entry("theme", scope="user:u-1")
        assert theme is not None and theme.value == {"mode": "dark"}
        assert theme.expires_at == datetime(2099, 1, 1, tzinfo=timezone.utc)
        motd = db.state.get_entry("motd", scope="app")
        assert motd is not None and motd.version == 2
