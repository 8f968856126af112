"""Copy between every pair of backends: lossless both ways, idempotent, verified.

Pairs: each selected backend -> SQLite and SQLite -> each, plus PostgreSQL <-> MongoDB,
JSON files -> MySQL and Redis -> PostgreSQL when selected (``--backends``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from praisondb import transfer
from tests.e2e.transfer_helpers import (
    Stores,
    delete_user,
    make_dataset,
    snapshot,
    stores_fixture,  # noqa: F401 - the `stores` fixture
    transfer_pairs,
    without_state_timestamps,
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "pair" in metafunc.fixturenames:
        pairs = transfer_pairs(metafunc.config)
        metafunc.parametrize("pair", pairs, ids=[f"{a}-to-{b}" for a, b in pairs])


def _sides(stores: Stores, pair: tuple[str, str]) -> tuple[str, str]:
    a, b = pair
    return a, (b + "#2" if a == b else b)


def test_round_trip_is_lossless(stores: Stores, pair: tuple[str, str], uid: str) -> None:
    """A -> B, wipe A, B -> A: A holds exactly what it held before, and verify agrees."""
    a_key, b_key = _sides(stores, pair)
    a, b = stores.db(a_key), stores.db(b_key)
    data = make_dataset(a, uid)
    before = snapshot(a, data.user_id)

    there = transfer.copy(a, b, user_id=data.user_id, batch_size=7)
    assert there.sessions_created == 3
    assert there.messages_copied == data.messages
    assert (there.runs_copied, there.checkpoints_copied, there.spans_copied) == (1, 1, 1)
    assert there.state_copied == 3
    assert there.verify is not None and there.verify.ok, there.verify
    assert without_state_timestamps(snapshot(b, data.user_id)) == without_state_timestamps(before)

    delete_user(a, data.user_id, data.session_ids)
    back = transfer.copy(b, a, user_id=data.user_id, batch_size=5)
    assert back.sessions_created == 3 and back.messages_copied == data.messages
    assert without_state_timestamps(snapshot(a, data.user_id)) == without_state_timestamps(before)
    assert transfer.verify(a, b, user_id=data.user_id).ok
    assert transfer.verify(b, a, user_id=data.user_id).ok


def test_rerun_adds_and_changes_nothing(stores: Stores, pair: tuple[str, str], uid: str) -> None:
    a_key, b_key = _sides(stores, pair)
    a, b = stores.db(a_key), stores.db(b_key)
    data = make_dataset(a, uid)
    transfer.copy(a, b, user_id=data.user_id)
    after_first = snapshot(b, data.user_id)

    again = transfer.copy(a, b, user_id=data.user_id)
    assert again.incremental_since is not None
    assert (again.sessions_created, again.sessions_updated, again.messages_copied) == (0, 0, 0)
    assert (again.runs_copied, again.checkpoints_copied, again.state_copied) == (0, 0, 0)
    full = transfer.copy(a, b, user_id=data.user_id, full=True)
    assert full.sessions_unchanged == 3 and full.messages_copied == 0
    assert snapshot(b, data.user_id) == after_first

    # new messages in the source are picked up by the next (incremental) run
    a.messages.append(data.session_ids[0], "user", "one more")
    more = transfer.copy(a, b, user_id=data.user_id)
    assert more.messages_copied == 1 and more.sessions_updated == 1
    assert more.verify is not None and more.verify.ok


def test_export_import_round_trip(
    stores: Stores, pair: tuple[str, str], uid: str, tmp_path: Path
) -> None:
    a_key, b_key = _sides(stores, pair)
    a, b = stores.db(a_key), stores.db(b_key)
    data = make_dataset(a, uid)
    before = snapshot(a, data.user_id)
    path = tmp_path / "dump.jsonl.gz"
    exported = transfer.export(a, path, user_id=data.user_id)
    assert exported.messages_copied == data.messages and exported.bytes > 0

    imported = transfer.import_(path, b)
    assert imported.messages_copied == data.messages
    assert imported.verify is not None and imported.verify.ok, imported.verify
    assert without_state_timestamps(snapshot(b, data.user_id)) == without_state_timestamps(before)
    assert transfer.verify(path, b).ok
    rerun = transfer.import_(path, b)
    assert (rerun.sessions_created, rerun.messages_copied, rerun.state_copied) == (0, 0, 0)
