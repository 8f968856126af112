"""Session ids are data: hostile ids are stored exactly or rejected, never interpreted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from praisondb import PraisonDB, ValidationError
from praisondb.urls import parse_url

HOSTILE_IDS = [
    "../../etc/passwd",
    "a/b",
    "a\\b",
    "..",
    ".",
    "'; DROP TABLE sessions; --",
    '" OR 1=1 --',
    "{$ne: null}",
    "$where",
    "*",
    "CON",
    "nul.txt",
    "user:42:support",
    "{hash}tag",
    "Ünïcødé 🚀 中文",
    "trailing space ",
    "x" * 255,
]


@pytest.mark.parametrize("raw", HOSTILE_IDS, ids=range(len(HOSTILE_IDS)))
def test_hostile_ids_are_stored_exactly(db: PraisonDB, uid: str, raw: str) -> None:
    session_id = raw if len(raw) == 255 else f"{raw}{uid}"[:255]
    session_id = raw if raw in {"..", "."} and not db.sessions.exists(raw) else session_id
    db.sessions.create(session_id, user_id=f"u-{uid}", metadata={"raw": raw})
    db.messages.append(session_id, "user", raw)
    db.state.set(raw or "k", raw, scope=f"session:{session_id}")
    assert db.sessions.get(session_id).metadata == {"raw": raw}
    assert [m.content for m in db.messages.list(session_id)] == [raw]
    assert db.state.get(raw, scope=f"session:{session_id}") == raw
    assert [s.id for s in db.sessions.list(user_id=f"u-{uid}").items] == [session_id]
    assert db.sessions.delete(session_id)
    assert not db.sessions.exists(session_id)


def test_case_differences_are_different_sessions(db: PraisonDB, uid: str) -> None:
    db.sessions.create(f"Case-{uid}", title="upper")
    db.sessions.create(f"case-{uid}", title="lower")
    assert db.sessions.get(f"Case-{uid}").title == "upper"
    assert db.sessions.get(f"case-{uid}").title == "lower"


@pytest.mark.parametrize("bad", ["", "x" * 256, "line\nbreak", "nul\x00id", "tab\tid", "\ud800"])
def test_invalid_ids_are_rejected(db: PraisonDB, bad: str) -> None:
    with pytest.raises(ValidationError):
        db.sessions.create(bad)
    with pytest.raises(ValidationError):
        db.messages.append(bad, "user", "x")
    with pytest.raises(ValidationError):
        db.sessions.get(bad)


@pytest.mark.backends("sqlite", "json")
def test_files_stay_inside_the_store(db: PraisonDB, backend_url: str) -> None:
    """A file-backed store writes only inside its own path, whatever the ids were."""
    url = parse_url(backend_url)
    assert url.path
    root = Path(url.path).resolve()
    allowed = {root} if root.is_dir() else {root, *root.parent.glob(root.name + "-*")}
    parent = root.parent
    for path in parent.iterdir():
        assert path.resolve() in allowed or any(
            path.resolve().is_relative_to(a) for a in allowed if a.is_dir()
        ), f"{path} was written outside the store"
    for dirpath, _dirs, files in os.walk(root if root.is_dir() else parent):
        for name in files:
            assert Path(dirpath, name).resolve().is_relative_to(parent)
