"""Long-term memories move with copy, export and import, and verify compares them.

Pairs: the transfer matrix's pairs plus each selected backend -> the next one
(``--backends``), so memory-keeping stores are paired even without SQLite.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from praisondb import PraisonDB, transfer
from praisondb.model import MemoryItem
from praisondb.transfer.archive import ArchiveReader
from tests.conftest import selected_backends
from tests.e2e.transfer_helpers import (
    T0,
    Stores,
    stores_fixture,  # noqa: F401 - the `stores` fixture
    transfer_pairs,
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    names = selected_backends(metafunc.config)
    if "pair" in metafunc.fixturenames:
        ring = list(zip(names, names[1:] + names[:1], strict=True)) if len(names) > 1 else []
        pairs = list(dict.fromkeys([*transfer_pairs(metafunc.config), *ring]))
        metafunc.parametrize("pair", pairs, ids=[f"{a}-to-{b}" for a, b in pairs])
    if "backend_name" in metafunc.fixturenames:
        metafunc.parametrize("backend_name", names)


def _sides(pair: tuple[str, str]) -> tuple[str, str]:
    a, b = pair
    return a, (b + "#2" if a == b else b)


def _memories(db: PraisonDB, uid: str) -> tuple[str, list[MemoryItem]]:
    """A user with one session and three memories (one with a vector), plus an agent's
    memory that a user-filtered transfer leaves behind."""
    user = f"u-{uid}"
    db.sessions.create(f"{uid}-s", user_id=user)
    items = [
        MemoryItem(
            text=f"fact {i}: likes green tea 🍵",
            scope="user",
            owner=user,
            importance=0.25 * i,
            relevance=0.5,
            quality=0.125 * (i + 1),
            metadata={"source": "chat", "a.b": {"$c": [i, 2.5, None]}},
            embedding=[0.5, -0.25, float(i)] if i == 2 else None,
            id=f"{uid}-m{i}",
            created_at=T0 + timedelta(seconds=i, microseconds=7),
        )
        for i in range(3)
    ]
    agent = MemoryItem(text="agent note", scope="agent", owner=user, id=f"{uid}-agent")
    store: Any = db.conversations
    store.put_memories([*items, agent])
    return user, items


def _stored(db: PraisonDB, user: str) -> list[MemoryItem]:
    return db.memory().list(user_id=user, limit=100).items


def test_copy_moves_memories_exactly_and_verify_compares_them(
    stores: Stores, pair: tuple[str, str], uid: str
) -> None:
    a_key, b_key = _sides(pair)
    a, b = stores.db(a_key), stores.db(b_key)
    user, items = _memories(a, uid)

    there = transfer.copy(a, b, user_id=user)
    assert there.memories_copied == 3
    assert there.verify is not None and there.verify.ok, there.verify
    assert there.verify.memories_checked == 3
    assert _stored(b, user) == _stored(a, user) == sorted(items, key=lambda m: m.created_at)[::-1]
    assert b.memory().count(agent=user) == 0  # another scope: not the user's

    again = transfer.copy(a, b, user_id=user, full=True)
    assert again.memories_copied == 0

    changed = b.memory().get(items[0].id)
    changed.text = "edited on the target"
    store: Any = b.conversations
    store.put_memories([changed])
    report = transfer.verify(a, b, user_id=user)
    assert not report.ok and report.memories_different == 1
    assert "text" in report.memory_differences[0]
    assert transfer.copy(a, b, user_id=user, full=True).memories_copied == 1
    assert transfer.verify(a, b, user_id=user).ok


def test_export_and_import_carry_memories(
    stores: Stores, backend_name: str, uid: str, tmp_path: Path
) -> None:
    db = stores.db(backend_name)
    user, _ = _memories(db, uid)
    path = tmp_path / "memories.jsonl.gz"
    exported = transfer.export(db, path, user_id=user)
    assert exported.memories_copied == 3
    assert ArchiveReader(path).scan().memories == 3
    with PraisonDB("memory://") as target:
        imported = transfer.import_(path, target)
        assert imported.memories_copied == 3
        assert imported.verify is not None and imported.verify.ok
        assert imported.verify.memories_checked == 3
        assert _stored(target, user) == _stored(db, user)
        assert target.memory().search("green tea", user_id=user)
        assert transfer.import_(path, target).memories_copied == 0


def test_an_unfiltered_export_carries_every_scope(tmp_path: Path) -> None:
    path = tmp_path / "all.jsonl"
    with PraisonDB("memory://") as source, PraisonDB("memory://") as target:
        memory = source.memory()
        added = [
            memory.add("user fact", user_id="u"),
            memory.add("agent fact", agent="writer"),
            memory.add("app fact", app="shop"),
        ]
        assert transfer.export(source, path).memories_copied == 3
        transfer.import_(path, target)
        for item in added:
            assert item is not None and target.memory().get(item.id) == item


def test_a_memory_record_altered_in_an_archive_is_damage(tmp_path: Path) -> None:
    path = tmp_path / "one.jsonl"
    with PraisonDB("memory://") as source:
        source.memory().add("a fact", user_id="u")
        transfer.export(source, path)
    text = path.read_text()
    path.write_text(text.replace('"memories":1', '"memories":2'))
    scan = ArchiveReader(path).scan()
    assert not scan.ok and "memories" in str(scan.damage[0])
