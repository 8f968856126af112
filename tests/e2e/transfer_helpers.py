"""Shared pieces of the transfer tests: stores per backend, a dataset, and snapshots."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from praisondb import PraisonDB
from praisondb.model import Checkpoint, Message, Run, SessionInfo, Span, StateEntry
from praisondb.stores.base import SessionQuery
from tests.backends import BACKENDS
from tests.conftest import require_all_backends, selected_backends

EXTRA_PAIRS = [
    ("postgres", "mongodb"),
    ("mongodb", "postgres"),
    ("json", "mysql"),
    ("redis", "postgres"),
]


def transfer_pairs(config: pytest.Config) -> list[tuple[str, str]]:
    """Each backend -> SQLite and SQLite -> each backend, plus the named cross pairs."""
    names = selected_backends(config)
    pairs: list[tuple[str, str]] = []
    if "sqlite" in names:
        for name in names:
            if name != "sqlite":
                pairs += [(name, "sqlite"), ("sqlite", name)]
        pairs.append(("sqlite", "sqlite"))
    pairs += [p for p in EXTRA_PAIRS if p[0] in names and p[1] in names and p not in pairs]
    if not pairs and names:
        pairs = [(names[0], names[-1])]
    return pairs


class Stores:
    """One private store per backend per test run (two for a backend paired with itself)."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self.tmp = tmp_path_factory
        self.stack = contextlib.ExitStack()
        self.urls: dict[str, str] = {}
        self.dbs: dict[str, PraisonDB] = {}

    def url(self, key: str) -> str:
        """``key`` is a backend name, optionally with ``#2`` for a second store."""
        if key not in self.urls:
            name = key.split("#", 1)[0]
            tmp = self.tmp.mktemp(f"transfer-{name}")
            try:
                self.urls[key] = self.stack.enter_context(BACKENDS[name].factory(tmp))
            except Exception as exc:
                message = f"backend {name} is unreachable: {type(exc).__name__}: {exc}"
                if require_all_backends():
                    pytest.fail(message)
                pytest.skip(message)
        return self.urls[key]

    def db(self, key: str) -> PraisonDB:
        if key not in self.dbs:
            self.dbs[key] = self.stack.enter_context(PraisonDB(self.url(key), auto_migrate=True))
        return self.dbs[key]

    def close(self) -> None:
        self.stack.close()


@pytest.fixture(scope="session", name="stores")
def stores_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stores]:
    registry = Stores(tmp_path_factory)
    try:
        yield registry
    finally:
        registry.close()


T0 = datetime(2024, 3, 5, 7, 9, 11, 123457, tzinfo=timezone.utc)


@dataclass
class Dataset:
    user_id: str
    session_ids: list[str]
    messages: int


def make_dataset(db: PraisonDB, uid: str, *, messages: int = 40) -> Dataset:
    """Three sessions of one user: a long one with a gap, a branch of it, and an empty one.

    Odd microseconds, emoji, content blocks, keys with '.' and '$', runs, checkpoints,
    spans, and state with versions and TTLs: everything a copy must keep exactly.
    """
    user = f"u-{uid}"
    main, branch, empty = f"{uid}-main", f"{uid}-branch", f"{uid}-empty"
    store = db.conversations
    store.put_session(
        SessionInfo(
            main,
            user_id=user,
            agent="support",
            title="Damaged order 🎁",
            metadata={"plan": "pro", "a.b": {"$weird": [1, 2.5, None, True]}},
            created_at=T0,
            updated_at=T0 + timedelta(hours=1, microseconds=3),
        )
    )
    run = Run(
        main,
        id=f"{uid}-run",
        model="claude",
        status="completed",
        input_tokens=12,
        output_tokens=34,
        started_at=T0 + timedelta(seconds=1),
        ended_at=T0 + timedelta(seconds=2, microseconds=7),
        metadata={"k": "v"},
    )
    store.save_run(run)
    batch = []
    for seq in range(1, messages + 1):
        content: Any = (
            f"message {seq} — héllo 👋 {'x' * (seq % 7)}"
            if seq % 5
            else [{"type": "text", "text": f"block {seq}"}, {"type": "image", "ref": "r.png"}]
        )
        batch.append(
            Message(
                main,
                "user" if seq % 2 else "assistant",
                content,
                metadata={"n": seq, "nested": {"x.y": [seq]}} if seq % 3 else {},
                run_id=run.id if seq % 4 == 0 else None,
                id=f"{uid}-m{seq:05d}",
                seq=seq,
                created_at=T0 + timedelta(seconds=seq, microseconds=seq),
            )
        )
    store.put_messages(main, batch)
    store.delete_messages(main, from_seq=5, to_seq=6)  # a gap: seq values are never reused
    final = store.get_session(main)
    final.updated_at = T0 + timedelta(hours=1, microseconds=3)
    store.put_session(final)
    store.save_checkpoint(
        Checkpoint(
            main,
            10,
            {"cart": [1, 2]},
            "before-refund",
            id=f"{uid}-cp",
            created_at=T0 + timedelta(seconds=30, microseconds=1),
        )
    )
    store.save_span(
        Span(
            f"{uid}-trace",
            "turn",
            id=f"{uid}-span",
            session_id=main,
            user_id=user,
            status="ok",
            attributes={"tokens": 3},
            started_at=T0 + timedelta(seconds=3),
            ended_at=T0 + timedelta(seconds=4),
        )
    )
    store.put_session(
        SessionInfo(
            branch,
            user_id=user,
            agent="support",
            parent_id=main,
            forked_at_seq=10,
            created_at=T0 + timedelta(minutes=5),
            updated_at=T0 + timedelta(minutes=6),
        )
    )
    store.put_messages(
        branch,
        [
            Message(
                branch,
                "user",
                f"branch {i}",
                id=f"{uid}-b{i}",
                seq=10 + i,
                created_at=T0 + timedelta(minutes=5, seconds=i),
            )
            for i in range(1, 4)
        ],
    )
    info = store.get_session(branch)
    info.updated_at = T0 + timedelta(minutes=6)
    store.put_session(info)
    store.put_session(
        SessionInfo(
            empty,
            user_id=user,
            created_at=T0 + timedelta(minutes=9),
            updated_at=T0 + timedelta(minutes=9),
        )
    )
    far = datetime.now(timezone.utc) + timedelta(days=30)
    db.state_store.put_entries(
        [
            StateEntry(f"user:{user}", "theme", "dark", version=3, updated_at=T0),
            StateEntry(
                f"user:{user}", "quota", {"left": 5}, version=1, expires_at=far, updated_at=T0
            ),
            StateEntry(f"session:{main}", "order", "1042", version=2, updated_at=T0),
        ]
    )
    return Dataset(user, [main, branch, empty], messages - 2 + 3)


def snapshot(db: PraisonDB, user_id: str) -> dict[str, Any]:
    """Everything stored for one user, as plain comparable data."""
    store = db.conversations
    sessions: list[SessionInfo] = []
    cursor = None
    while True:
        page = store.list_sessions(SessionQuery(user_id=user_id, limit=100, cursor=cursor))
        sessions += page.items
        cursor = page.next_cursor
        if not cursor:
            break
    data: dict[str, Any] = {}
    for info in sorted(sessions, key=lambda s: s.id):
        data[info.id] = {
            "info": info,
            "messages": store.list_messages(info.id),
            "runs": store.list_runs(info.id),
            "checkpoints": store.list_checkpoints(info.id),
            "spans": store.list_spans(session_id=info.id),
            "state": db.state_store.list_entries(f"session:{info.id}"),
        }
    data["user-state"] = db.state_store.list_entries(f"user:{user_id}")
    return data


def without_state_timestamps(data: dict[str, Any]) -> dict[str, Any]:
    """State ``updated_at`` is informational (not every backend keeps it exactly)."""

    def strip(entries: list[StateEntry]) -> list[tuple[Any, ...]]:
        return [(e.scope, e.key, e.value, e.version, e.expires_at) for e in entries]

    out = dict(data)
    out["user-state"] = strip(data["user-state"])
    for key, value in data.items():
        if isinstance(value, dict):
            out[key] = {**value, "state": strip(value["state"])}
    return out


def delete_user(db: PraisonDB, user_id: str, session_ids: list[str]) -> None:
    for sid in session_ids:
        db.conversations.delete_session(sid)
        db.state_store.delete_scope(f"session:{sid}")
    db.state_store.delete_scope(f"user:{user_id}")


def archive_path(tmp: Path, name: str = "dump.jsonl.gz") -> Path:
    return tmp / name
