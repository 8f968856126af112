"""Regenerate ``archive-v1.jsonl`` (run once per format version, then never again).

The file is kept so every later release proves it still reads version-1 archives:
``tests/unit/test_archive_compat.py`` imports it and checks every value.

    .venv/bin/python tests/data/make_archive_v1.py
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from praisondb import PraisonDB, transfer
from praisondb.model import Checkpoint, Message, Run, SessionInfo, Span, StateEntry

T0 = datetime(2024, 6, 1, 12, 0, 0, 1, tzinfo=timezone.utc)


def fill(db: PraisonDB) -> None:
    store = db.conversations
    store.put_session(
        SessionInfo(
            "v1-main",
            user_id="u-1",
            agent="support",
            title="Order 🎁",
            metadata={"a.b": {"$c": [1, 2.5, None, True]}},
            created_at=T0,
            updated_at=T0 + timedelta(hours=1),
        )
    )
    store.save_run(
        Run(
            "v1-main",
            id="v1-run",
            model="claude",
            status="completed",
            input_tokens=10,
            output_tokens=20,
            started_at=T0,
            ended_at=T0 + timedelta(seconds=2, microseconds=999999),
        )
    )
    store.save_checkpoint(
        Checkpoint(
            "v1-main", 2, {"cart": ["mug"]}, "cp", id="v1-cp", created_at=T0 + timedelta(seconds=5)
        )
    )
    store.save_span(
        Span(
            "v1-trace",
            "turn",
            id="v1-span",
            session_id="v1-main",
            user_id="u-1",
            status="ok",
            attributes={"k": 1},
            started_at=T0,
            ended_at=T0 + timedelta(seconds=1),
        )
    )
    store.put_messages(
        "v1-main",
        [
            Message(
                "v1-main",
                "user",
                "héllo 👋",
                {"lang": "fr"},
                None,
                "v1-m1",
                1,
                T0 + timedelta(seconds=1),
            ),
            Message(
                "v1-main",
                "assistant",
                [{"type": "text", "text": "hi"}],
                {},
                "v1-run",
                "v1-m2",
                2,
                T0 + timedelta(seconds=2, microseconds=123456),
            ),
            Message(
                "v1-main",
                "tool",
                "result",
                {"tool": "lookup"},
                "v1-run",
                "v1-m4",
                4,
                T0 + timedelta(seconds=4),
            ),
        ],
    )
    info = store.get_session("v1-main")
    info.updated_at, info.last_seq = T0 + timedelta(hours=1), 4
    store.put_session(info)
    store.put_session(
        SessionInfo(
            "v1-branch",
            user_id="u-1",
            parent_id="v1-main",
            forked_at_seq=2,
            created_at=T0 + timedelta(minutes=1),
            updated_at=T0 + timedelta(minutes=1),
        )
    )
    db.state_store.put_entries(
        [
            StateEntry("app", "motd", "hello", 2, None, T0),
            StateEntry(
                "user:u-1",
                "theme",
                {"mode": "dark"},
                1,
                datetime(2099, 1, 1, tzinfo=timezone.utc),
                T0,
            ),
        ]
    )


if __name__ == "__main__":
    with PraisonDB("memory://") as db:
        fill(db)
        out = Path(__file__).with_name("archive-v1.jsonl")
        transfer.export(db, out)
        print(f"wrote {out}")
