"""BulkSessionLoader.put_session_batch: put_session + put_messages for many sessions, atomically.

Generated only for backends whose store implements the optional protocol
(``requires`` marker); those must behave exactly like the memory reference store.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from praisondb import Conflict, PraisonDB
from praisondb.model import Message, SessionInfo
from praisondb.stores.base import BulkSessionLoader

pytestmark = pytest.mark.requires.with_args(BulkSessionLoader)

T0 = datetime(2023, 12, 31, 23, 59, 59, 123456, tzinfo=timezone.utc)


@pytest.fixture
def loader(db: PraisonDB) -> BulkSessionLoader:
    store = db.conversations
    assert isinstance(store, BulkSessionLoader)
    return store


def session(sid: str, **fields: object) -> SessionInfo:
    values: dict[str, object] = {
        "user_id": "bulk-user",
        "agent": "bulk",
        "title": f"title of {sid} \U0001f680",
        "metadata": {"a.b": 1, "$x": [1, {"y": None}], "nul": "a\x00b"},
        "created_at": T0,
        "updated_at": T0 + timedelta(hours=1, microseconds=7),
    }
    values.update(fields)
    return SessionInfo(sid, **values)  # type: ignore[arg-type]


def messages(sid: str, seqs: range | list[int], tag: str = "m") -> list[Message]:
    out = []
    for seq in seqs:
        content: str | list[dict[str, object]] = (
            f"{tag} {seq} \u00fc\x00 \ue000"
            if seq % 3
            else [{"type": "text", "text": f"{tag} {seq}"}, {"type": "x", "n": seq}]
        )
        out.append(
            Message(
                sid,
                "user" if seq % 2 else "assistant",
                content,
                metadata={"seq": seq, "k.$": [seq, None], "deep": {"t": tag, "nul": "a\x00\ue000"}},
                run_id=f"run-{sid}" if seq % 4 == 0 else None,
                id=f"{sid}-{tag}-{seq:04d}",
                seq=seq,
                created_at=T0 + timedelta(seconds=seq, microseconds=seq),
            )
        )
    return out


def test_round_trip_is_exact(loader: BulkSessionLoader, db: PraisonDB, uid: str) -> None:
    a = session(f"{uid}-a", last_seq=9, message_count=9)
    b = session(f"{uid}-b", parent_id=f"{uid}-a", forked_at_seq=4, title=None, metadata={})
    c = session(f"{uid}-c", user_id=None, agent=None, last_seq=0)
    batch = [
        (a, messages(a.id, range(1, 10))),
        (b, messages(b.id, [1, 2, 3, 7])),
        (c, []),
    ]
    assert loader.put_session_batch(batch) == 13
    for info, sent in batch:
        top = max((m.seq for m in sent), default=0)
        expected = replace(info, message_count=len(sent), last_seq=max(info.last_seq, top))
        assert db.conversations.get_session(info.id) == expected
        assert db.conversations.list_messages(info.id) == sent
        assert db.conversations.count_messages(info.id) == len(sent)


def test_rerun_is_idempotent(loader: BulkSessionLoader, db: PraisonDB, uid: str) -> None:
    a, b = session(f"{uid}-a"), session(f"{uid}-b")
    batch = [(a, messages(a.id, range(1, 6))), (b, messages(b.id, range(1, 4)))]
    assert loader.put_session_batch(batch) == 8
    before = [(db.conversations.get_session(i.id), db.messages.list(i.id)) for i, _ in batch]
    assert loader.put_session_batch(batch) == 0
    after = [(db.conversations.get_session(i.id), db.messages.list(i.id)) for i, _ in batch]
    assert after == before


def test_resumes_a_half_loaded_session(loader: BulkSessionLoader, db: PraisonDB, uid: str) -> None:
    info = session(f"{uid}-half")
    everything = messages(info.id, range(1, 21))
    db.conversations.put_session(replace(info, last_seq=0, message_count=0))
    assert db.conversations.put_messages(info.id, everything[:8]) == 8
    assert loader.put_session_batch([(info, everything)]) == 12
    assert db.conversations.list_messages(info.id) == everything
    stored = db.conversations.get_session(info.id)
    assert (stored.message_count, stored.last_seq, stored.updated_at) == (20, 20, info.updated_at)
    assert db.messages.append(info.id, "user", "next").seq == 21


def test_seq_held_by_another_id_writes_nothing(
    loader: BulkSessionLoader, db: PraisonDB, uid: str
) -> None:
    held = session(f"{uid}-held")
    original = messages(held.id, range(1, 4))
    assert loader.put_session_batch([(held, original)]) == 3
    newcomer = session(f"{uid}-new")
    intruder = messages(held.id, [2], tag="other")
    changed = replace(held, title="changed")
    with pytest.raises(Conflict):
        loader.put_session_batch(
            [(newcomer, messages(newcomer.id, range(1, 5))), (changed, intruder)]
        )
    assert not db.sessions.exists(newcomer.id)
    assert db.messages.list(newcomer.id) == []
    assert db.conversations.get_session(held.id).title == held.title
    assert db.conversations.list_messages(held.id) == original


def test_seq_given_twice_in_one_call_writes_nothing(
    loader: BulkSessionLoader, db: PraisonDB, uid: str
) -> None:
    info = session(f"{uid}-twice")
    clash = messages(info.id, [1, 2]) + messages(info.id, [2], tag="other")
    with pytest.raises(Conflict):
        loader.put_session_batch([(session(f"{uid}-ok"), []), (info, clash)])
    assert not db.sessions.exists(info.id)
    assert not db.sessions.exists(f"{uid}-ok")


def test_last_seq_never_goes_down(loader: BulkSessionLoader, db: PraisonDB, uid: str) -> None:
    info = session(f"{uid}-top", last_seq=50)
    assert loader.put_session_batch([(info, messages(info.id, range(1, 11)))]) == 10
    assert db.conversations.get_session(info.id).last_seq == 50
    lowered = replace(info, last_seq=3, message_count=0, title="renamed")
    assert loader.put_session_batch([(lowered, [])]) == 0
    stored = db.conversations.get_session(info.id)
    assert (stored.last_seq, stored.message_count, stored.title) == (50, 10, "renamed")
    assert db.messages.append(info.id, "user", "after").seq == 51


def test_later_items_of_one_session_see_earlier_ones(
    loader: BulkSessionLoader, db: PraisonDB, uid: str
) -> None:
    info = session(f"{uid}-again")
    first, second = messages(info.id, range(1, 4)), messages(info.id, range(3, 7))
    final = replace(info, title="second")
    assert loader.put_session_batch([(info, first), (final, second)]) == 6
    stored = db.conversations.get_session(info.id)
    assert (stored.title, stored.message_count, stored.last_seq) == ("second", 6, 6)
    assert db.conversations.list_messages(info.id) == first + second[1:]


def test_appends_continue_after_a_bulk_load(
    loader: BulkSessionLoader, db: PraisonDB, uid: str
) -> None:
    info = session(f"{uid}-live")
    assert loader.put_session_batch([(info, messages(info.id, [1, 2, 5]))]) == 3
    appended = db.messages.append(info.id, "assistant", "next")
    assert appended.seq == 6
    assert [m.seq for m in db.messages.list(info.id)] == [1, 2, 5, 6]
    assert db.conversations.get_session(info.id).message_count == 4
