"""Messages: exact round trips, seq assignment, windows, deletes, concurrent writers."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

from praisondb import Conflict, Message, NotFound, PraisonDB, ValidationError
from tests.conformance.conftest import spawn_worker
from tests.waiting import eventually

EXOTIC_TEXT = {
    "emoji": "emoji 🚀👩‍👩‍👧‍👦🏳️‍🌈 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "cjk": "中文 日本語 한국어 テキスト",
    "rtl": "مرحبا بالعالم עברית שלום",
    "nul": "before\x00after\x00",
    "control": "tab\tnewline\nreturn\r bell\x07 escape\x1b",
    "quotes": '\'; DROP TABLE messages; -- " \\ \\u0000 {"json": true}',
    "empty": "",
    "whitespace": "  \n\t ",
}


def make_session(db: PraisonDB, uid: str) -> str:
    db.sessions.create(uid, user_id="u")
    return uid


@pytest.mark.parametrize("name", sorted(EXOTIC_TEXT))
def test_text_round_trips_exactly(db: PraisonDB, uid: str, name: str) -> None:
    sid = make_session(db, uid)
    text = EXOTIC_TEXT[name]
    stored = db.messages.append(sid, "user", text, {"text": text, text or "empty-key": name})
    (got,) = db.messages.list(sid)
    assert got.content == text
    assert got.metadata == {"text": text, text or "empty-key": name}
    assert got == stored


def test_content_blocks_and_nested_metadata_round_trip(db: PraisonDB, uid: str) -> None:
    sid = make_session(db, uid)
    blocks = [
        {"type": "text", "text": "look at this \x00 NUL"},
        {"type": "tool_use", "id": "t1", "name": "search", "input": {"q": "ü", "n": 3, "x": None}},
        {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "ok"}]},
    ]
    metadata = {
        "a.b": 1,
        "$set": {"$inc": 2},
        "key with spaces": [True, False, None, 1.5, -0.0, 2**53, "x"],
        "deep": {"l1": {"l2": {"l3": {"l4": ["z", {"k.$": "v"}]}}}},
        "": "empty key",
        "ключ": "значение",
        "nul\x00key": "nul\x00value",
    }
    db.messages.append(sid, "assistant", blocks, metadata)
    (got,) = db.messages.list(sid)
    assert got.content == blocks
    assert got.metadata == metadata
    assert isinstance(got.metadata["key with spaces"][3], float)


def test_large_message_round_trips(db: PraisonDB, uid: str) -> None:
    sid = make_session(db, uid)
    big = ("0123456789abcdef🚀" * 320_000)[: 5 * 1024 * 1024]
    db.messages.append(sid, "tool", big)
    (got,) = db.messages.list(sid)
    assert len(got.content) == len(big) and got.content == big


def test_timestamps_keep_microseconds_and_are_utc(db: PraisonDB, uid: str) -> None:
    sid = make_session(db, uid)
    moment = datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=timezone.utc)
    db.messages.extend(sid, [Message(sid, "user", "leap", created_at=moment)])
    (got,) = db.messages.list(sid)
    assert got.created_at == moment
    assert got.created_at.utcoffset() == timedelta(0)
    other_zone = datetime(2024, 3, 1, 8, 0, 0, 1, tzinfo=timezone(timedelta(hours=9)))
    db.messages.extend(sid, [Message(sid, "user", "tokyo", created_at=other_zone)])
    assert db.messages.list(sid)[-1].created_at == other_zone


def test_seq_is_assigned_in_order_and_counters_follow(db: PraisonDB, uid: str) -> None:
    sid = make_session(db, uid)
    first = db.messages.append(sid, "user", "one", run_id="run-1")
    more = db.messages.extend(
        sid,
        [
            {"role": "assistant", "content": "two"},
            Message(sid, "system", "three"),
            {"role": "tool", "content": [{"type": "text", "text": "four"}]},
        ],
    )
    assert first.seq == 1 and [m.seq for m in more] == [2, 3, 4]
    listed = db.messages.list(sid)
    assert [(m.seq, m.role) for m in listed] == [
        (1, "user"),
        (2, "assistant"),
        (3, "system"),
        (4, "tool"),
    ]
    assert listed[0].run_id == "run-1" and listed[0].session_id == sid
    info = db.sessions.get(sid)
    assert (info.message_count, info.last_seq) == (4, 4)
    assert db.messages.count(sid) == 4


def test_message_ids_are_kept(db: PraisonDB, uid: str) -> None:
    sid = make_session(db, uid)
    message = Message(sid, "user", "hello", id=f"msg-{uid}")
    db.messages.extend(sid, [message])
    assert db.messages.list(sid)[0].id == f"msg-{uid}"


def test_windows(db: PraisonDB, uid: str) -> None:
    sid = make_session(db, uid)
    db.messages.extend(sid, [{"role": "user", "content": str(i)} for i in range(1, 21)])

    def seqs(**kw: int) -> list[int]:
        return [m.seq for m in db.messages.list(sid, **kw)]

    assert seqs(last=3) == [18, 19, 20]
    assert seqs(after_seq=15) == [16, 17, 18, 19, 20]
    assert seqs(after_seq=5, limit=3) == [6, 7, 8]
    assert seqs(before_seq=4) == [1, 2, 3]
    assert seqs(after_seq=5, before_seq=10, last=2) == [8, 9]
    assert seqs(last=0) == []
    assert seqs(last=100) == list(range(1, 21))
    assert [m.seq for m in db.messages.iterate(sid, batch=6)] == list(range(1, 21))


def test_deleted_seqs_are_never_reused(db: PraisonDB, uid: str) -> None:
    sid = make_session(db, uid)
    db.messages.extend(sid, [{"role": "user", "content": str(i)} for i in range(10)])
    assert db.messages.delete(sid, from_seq=8) == 3
    assert db.messages.delete(sid, to_seq=2) == 2
    assert [m.seq for m in db.messages.list(sid)] == [3, 4, 5, 6, 7]
    nxt = db.messages.append(sid, "user", "after delete")
    assert nxt.seq == 11
    info = db.sessions.get(sid)
    assert (info.message_count, info.last_seq) == (6, 11)


def test_bad_input_is_rejected(db: PraisonDB, uid: str) -> None:
    sid = make_session(db, uid)
    with pytest.raises(ValidationError, match="surrogate"):
        db.messages.append(sid, "user", "lone \ud800 surrogate")
    with pytest.raises(ValidationError, match="role"):
        db.messages.append(sid, "robot", "hi")
    with pytest.raises(ValidationError):
        db.messages.append(sid, "user", 42)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        db.messages.append(sid, "user", "x", {"not": {1, 2}})  # type: ignore[dict-item]
    with pytest.raises(ValidationError):
        db.messages.append(sid, "user", "x", {"bad": "\udfff"})
    with pytest.raises(ValidationError, match="NaN"):
        db.messages.append(sid, "user", "x", {"score": float("nan")})
    with pytest.raises(ValidationError, match="NaN"):
        db.messages.append(sid, "user", [{"type": "text", "x": [float("inf")]}])
    with pytest.raises(ValidationError):
        db.messages.list(sid, last=-1)
    assert db.messages.count(sid) == 0, "a rejected message must not be half-stored"
    with pytest.raises(NotFound):
        db.messages.append(uid + "-missing", "user", "hello")


def test_batch_is_atomic_when_one_message_is_invalid(db: PraisonDB, uid: str) -> None:
    sid = make_session(db, uid)
    with pytest.raises(ValidationError):
        db.messages.extend(
            sid, [{"role": "user", "content": "fine"}, {"role": "nope", "content": "x"}]
        )
    assert db.messages.count(sid) == 0 and db.sessions.get(sid).last_seq == 0


def test_a_repeated_message_id_conflicts_and_stores_nothing(db: PraisonDB, uid: str) -> None:
    sid = make_session(db, uid)
    db.messages.extend(sid, [Message(sid, "user", "first", id=f"{uid}-m")])
    with pytest.raises(Conflict):
        db.messages.extend(sid, [Message(sid, "user", "again", id=f"{uid}-m")])
    with pytest.raises(Conflict):
        db.messages.extend(
            sid,
            [Message(sid, "user", "a", id=f"{uid}-x"), Message(sid, "user", "b", id=f"{uid}-x")],
        )
    assert [m.content for m in db.messages.list(sid)] == ["first"]
    assert db.sessions.get(sid).last_seq == 1


def test_put_messages_is_idempotent_and_keeps_seq(db: PraisonDB, uid: str) -> None:
    sid = make_session(db, uid)
    originals = [Message(sid, "user", f"m{i}", seq=i, id=f"{uid}-{i}") for i in (1, 2, 5)]
    store = db.conversations
    assert store.put_messages(sid, originals) == 3
    assert store.put_messages(sid, originals) == 0
    assert [(m.id, m.seq) for m in db.messages.list(sid)] == [(m.id, m.seq) for m in originals]
    assert db.sessions.get(sid).last_seq == 5
    assert db.messages.append(sid, "user", "next").seq == 6


PER_THREAD = 100
"""Appends per thread: 800 in all keep the eight writers overlapping the whole time (their
races are what is tested); more only lengthen the run (MongoDB's write conflicts, retried
with backoff, grow with the load on the machine)."""


def test_eight_threads_appending_lose_nothing(db: PraisonDB, uid: str) -> None:
    sid = make_session(db, uid)
    errors: list[BaseException] = []

    def writer(tag: int) -> None:
        try:
            for i in range(PER_THREAD):
                db.messages.append(sid, "user", f"{tag}-{i}")
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    messages = db.messages.list(sid)
    assert [m.seq for m in messages] == list(range(1, 8 * PER_THREAD + 1))
    assert sorted(m.content for m in messages) == sorted(
        f"{t}-{i}" for t in range(8) for i in range(PER_THREAD)
    )
    for tag in range(8):  # each writer's own messages stay in its order
        mine = [
            int(str(m.content).split("-")[1])
            for m in messages
            if str(m.content).startswith(f"{tag}-")
        ]
        assert mine == list(range(PER_THREAD))
    assert db.sessions.get(sid).message_count == 8 * PER_THREAD


@pytest.mark.usefixtures("multi_process")
def test_four_processes_appending_lose_nothing(
    db: PraisonDB, backend_url: str, uid: str, face: str
) -> None:
    sid = make_session(db, uid)
    workers = [
        spawn_worker("append", backend_url, sid, "200", f"p{n}", face=face) for n in range(4)
    ]
    for proc in workers:
        _out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    messages = db.messages.list(sid)
    assert [m.seq for m in messages] == list(range(1, 801))
    assert len({m.id for m in messages}) == 800
    assert sorted(m.content for m in messages) == sorted(
        f"p{n}-{i}" for n in range(4) for i in range(200)
    )
    info = db.sessions.get(sid)
    assert (info.message_count, info.last_seq) == (800, 800)


@pytest.mark.usefixtures("multi_process")
def test_store_is_readable_after_a_writer_is_killed(
    db: PraisonDB, backend_url: str, uid: str, face: str
) -> None:
    """SIGKILL a writer mid-stream: what is there is whole, gap-free, and appends go on."""
    sid = make_session(db, uid)
    proc = spawn_worker("append", backend_url, sid, "100000", "k", face=face)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    eventually(lambda: db.messages.count(sid) >= 50, 30, "50 messages from the writer")
    proc.kill()
    proc.wait(timeout=30)
    messages = db.messages.list(sid)
    assert len(messages) >= 50
    assert [m.seq for m in messages] == list(range(1, len(messages) + 1))
    for m in messages:
        assert m.content == f"k-{m.seq - 1}" and m.metadata == {"worker": "k", "i": m.seq - 1}
    nxt = db.messages.append(sid, "user", "after the crash")
    # A COMMIT the writer sent just before the kill may still land on a server after the
    # process is gone (before our append, which waits for its row lock): so the append is
    # the next after what is stored now, which may be one more than was read above.
    after = db.messages.list(sid)
    assert after[: len(messages)] == messages and after[-1] == nxt
    assert [m.seq for m in after] == list(range(1, len(after) + 1))
    assert [m.content for m in after[:-1]] == [f"k-{i}" for i in range(len(after) - 1)]
    assert len(after) - len(messages) in (1, 2)
    assert db.messages.count(sid) == len(after)
