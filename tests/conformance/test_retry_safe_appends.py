"""Retry-safe writes: a message id names one message, so sending it again stores nothing new.

A caller (or praisondb's own retry after a lost reply) that re-sends the same id with the
same role, content, metadata and run id gets the stored message back; the same id with
anything else is a Conflict, and a Conflict never stores or uses up a seq.
"""

from __future__ import annotations

import threading

import pytest

from praisondb import Conflict, Message, PraisonDB


def make_session(db: PraisonDB, uid: str) -> str:
    db.sessions.create(uid, user_id="u")
    return uid


def test_resending_one_message_returns_the_stored_one(db: PraisonDB, uid: str) -> None:
    sid = make_session(db, uid)
    first = db.messages.append(sid, "user", "hello", {"lang": "en"}, id=f"{uid}-m1")
    again = db.messages.append(sid, "user", "hello", {"lang": "en"}, id=f"{uid}-m1")
    assert (again.id, again.seq, again.created_at) == (first.id, first.seq, first.created_at)
    assert again.content == "hello" and again.metadata == {"lang": "en"}
    info = db.sessions.get(sid)
    assert (info.message_count, info.last_seq) == (1, 1)
    assert db.messages.append(sid, "assistant", "hi").seq == 2, "a resend must not use a seq"


def test_resending_a_batch_returns_it_whole(db: PraisonDB, uid: str) -> None:
    sid = make_session(db, uid)
    db.messages.append(sid, "system", "be brief")
    batch = [
        Message(sid, "user", "q", id=f"{uid}-a"),
        Message(sid, "assistant", [{"type": "text", "text": "a"}], {"k": [1, 2]}, id=f"{uid}-b"),
    ]
    stored = db.messages.extend(sid, batch)
    resent = db.messages.extend(
        sid,
        [{"role": m.role, "content": m.content, "metadata": m.metadata, "id": m.id} for m in batch],
    )
    assert (
        [(m.id, m.seq) for m in resent]
        == [(m.id, m.seq) for m in stored]
        == [
            (f"{uid}-a", 2),
            (f"{uid}-b", 3),
        ]
    )
    assert db.messages.count(sid) == 3 and db.sessions.get(sid).last_seq == 3


def test_the_same_id_with_other_content_conflicts(db: PraisonDB, uid: str) -> None:
    sid = make_session(db, uid)
    db.messages.append(sid, "user", "first", id=f"{uid}-m")
    for role, content, meta in (
        ("user", "changed", None),
        ("assistant", "first", None),
        ("user", "first", {"extra": True}),
    ):
        with pytest.raises(Conflict, match="new id"):
            db.messages.append(sid, role, content, meta, id=f"{uid}-m")
    assert [m.content for m in db.messages.list(sid)] == ["first"]
    assert db.sessions.get(sid).last_seq == 1


def test_a_batch_mixing_stored_and_new_ids_conflicts_and_stores_nothing(
    db: PraisonDB, uid: str
) -> None:
    sid = make_session(db, uid)
    db.messages.append(sid, "user", "old", id=f"{uid}-old")
    with pytest.raises(Conflict, match="whole and unchanged"):
        db.messages.extend(
            sid,
            [
                Message(sid, "user", "old", id=f"{uid}-old"),
                Message(sid, "user", "new", id=f"{uid}-new"),
            ],
        )
    assert [m.id for m in db.messages.list(sid)] == [f"{uid}-old"]
    assert db.sessions.get(sid).last_seq == 1


def test_an_id_of_another_session_is_not_taken_as_a_resend(db: PraisonDB, uid: str) -> None:
    one, two = make_session(db, uid), make_session(db, uid + "-2")
    db.messages.append(one, "user", "same", id=f"{uid}-shared")
    elsewhere = db.messages.append(two, "user", "same", id=f"{uid}-shared")
    assert (elsewhere.session_id, elsewhere.seq) == (two, 1)
    assert db.messages.count(one) == 1 and db.messages.count(two) == 1


def test_a_deleted_message_id_can_be_appended_again(db: PraisonDB, uid: str) -> None:
    sid = make_session(db, uid)
    db.messages.append(sid, "user", "gone soon", id=f"{uid}-m")
    assert db.messages.delete(sid) == 1
    back = db.messages.append(sid, "user", "gone soon", id=f"{uid}-m")
    assert back.seq == 2 and [m.id for m in db.messages.list(sid)] == [f"{uid}-m"]


def test_concurrent_resends_store_one_message(db: PraisonDB, uid: str) -> None:
    """Eight callers retrying one turn at once: one message, and all of them see it."""
    sid = make_session(db, uid)
    results: list[Message] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def send(turn: int) -> None:
        start.wait()
        try:
            for i in range(20):
                results.append(db.messages.append(sid, "user", f"turn {i}", id=f"{uid}-{i}"))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    stored = db.messages.list(sid)
    assert [m.seq for m in stored] == list(range(1, 21))
    assert sorted(m.id for m in stored) == sorted(f"{uid}-{i}" for i in range(20))
    by_id = {m.id: m.seq for m in stored}
    assert len(results) == 160 and all(by_id[m.id] == m.seq for m in results)
    assert db.sessions.get(sid).message_count == 20


def test_session_add_takes_an_id_and_is_retry_safe(db: PraisonDB, uid: str) -> None:
    session = db.session(uid)
    first = session.add_user("remember me", id=f"{uid}-turn-1")
    again = session.add_user("remember me", id=f"{uid}-turn-1")
    assert again.seq == first.seq == 1
    assert [m.id for m in session.history()] == [f"{uid}-turn-1"]
