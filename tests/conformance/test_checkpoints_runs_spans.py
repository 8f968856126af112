"""Checkpoints, runs and spans: stored whole, listed in order, found by id."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from praisondb import Checkpoint, NotFound, PraisonDB, Run, Span


def test_checkpoint_records_position_and_state(db: PraisonDB, uid: str) -> None:
    db.sessions.create(uid)
    db.messages.extend(uid, [{"role": "user", "content": str(i)} for i in range(3)])
    db.state.set("step", 3, scope=f"session:{uid}")
    db.state.set("cart", {"items": ["a.b", "$c"]}, scope=f"session:{uid}")
    first = db.checkpoints.create(uid, label="before-refund")
    assert first.seq == 3
    assert first.state == {"step": 3, "cart": {"items": ["a.b", "$c"]}}
    db.messages.append(uid, "assistant", "later")
    second = db.checkpoints.create(uid, state={"custom": True})
    assert second.seq == 4 and second.label is None
    assert db.checkpoints.get(first.id) == first
    assert [c.id for c in db.checkpoints.list(uid)] == [first.id, second.id]
    assert db.checkpoints.delete(first.id) is True
    assert db.checkpoints.delete(first.id) is False
    with pytest.raises(NotFound):
        db.checkpoints.get(first.id)
    with pytest.raises(NotFound):
        db.checkpoints.create(uid + "-missing")


def test_checkpoint_saved_as_is_round_trips(db: PraisonDB, uid: str) -> None:
    db.sessions.create(uid)
    moment = datetime(2023, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)
    checkpoint = Checkpoint(
        uid, 7, {"k": ["v", None]}, "label ✓", id=f"cp-{uid}", created_at=moment
    )
    db.conversations.save_checkpoint(checkpoint)
    assert db.checkpoints.get(f"cp-{uid}") == checkpoint


def test_runs(db: PraisonDB, uid: str) -> None:
    db.sessions.create(uid)
    run = db.runs.start(uid, model="claude-x", metadata={"input": "hi"})
    assert db.runs.get(run.id).status == "running"
    ended = db.runs.end(run.id, input_tokens=12, output_tokens=34, metadata={"output": "yo"})
    got = db.runs.get(run.id)
    assert got == ended
    assert (got.status, got.input_tokens, got.output_tokens) == ("completed", 12, 34)
    assert got.metadata == {"input": "hi", "output": "yo"}
    assert got.ended_at is not None and got.ended_at >= got.started_at
    base = datetime(2024, 1, 1, tzinfo=timezone.utc)
    for i in range(4):
        db.runs.save(
            Run(
                uid,
                id=f"{uid}-r{i}",
                started_at=base + timedelta(seconds=i),
                status="failed",
                error=f"e{i}",
            )
        )
    assert [r.id for r in db.runs.list(uid)][:4] == [f"{uid}-r{i}" for i in range(4)]
    assert [r.id for r in db.runs.list(uid, limit=2)] == [f"{uid}-r3", run.id]
    with pytest.raises(NotFound):
        db.runs.get(uid + "-missing")


def test_spans(db: PraisonDB, uid: str) -> None:
    db.sessions.create(uid)
    base = datetime(2024, 5, 6, 7, 8, 9, 101112, tzinfo=timezone.utc)
    trace = Span(
        f"t-{uid}", "agent", id=f"t-{uid}", session_id=uid, user_id=f"u-{uid}", started_at=base
    )
    child = Span(
        f"t-{uid}",
        "tool:search",
        id=f"s1-{uid}",
        parent_id=trace.id,
        session_id=uid,
        attributes={"args": {"q": "x.y"}, "result": ["r"] * 3},
        started_at=base + timedelta(microseconds=1),
    )
    store = db.conversations
    store.save_span(trace)
    store.save_span(child)
    child.status, child.ended_at = "ok", base + timedelta(seconds=1)
    store.save_span(child)  # upsert by id
    assert store.list_spans(trace_id=trace.id) == [trace, child]
    assert store.list_spans(session_id=uid, roots_only=True) == [trace]
    assert store.list_spans(user_id=f"u-{uid}") == [trace]
    assert store.list_spans(trace_id=trace.id, limit=1) == [child]


def test_get_span_by_id(db: PraisonDB, uid: str) -> None:
    span = Span(f"t-{uid}", "agent", id=f"sp-{uid}", attributes={"k.$": [1]})
    db.conversations.save_span(span)  # spans may belong to no session
    assert db.conversations.get_span(span.id) == span
    with pytest.raises(NotFound):
        db.conversations.get_span(f"sp-{uid}-missing")
