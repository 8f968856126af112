"""Per-session analytics and context on every backend and face: ``analyse`` over a fixed
conversation, satisfaction only from explicit feedback, and ``build_context``."""

from __future__ import annotations

from datetime import timedelta

import pytest

from praisondb import PraisonDB, ValidationError
from praisondb.model import Run, utcnow
from tests.conftest import FakeClock

CONVERSATION = [
    ("user", "I want to plan a trip to Lisbon in spring. Which neighbourhoods in Lisbon are best for food?"),
    ("assistant", "For food in Lisbon, Alfama and Bairro Alto are favourites; spring is a lovely season for a trip."),
    ("user", "Can you find flights to Lisbon and a hotel in Alfama?"),
    ("tool", "3 flights"),
    ("tool", "1 hotel"),
    ("assistant", [{"type": "text", "text": "I found three flights to Lisbon and a hotel in Alfama near the food markets."}]),
]  # fmt: skip


def _runs(db: PraisonDB, uid: str) -> None:
    """Three finished runs of 1, 2 and 4 seconds (one failed) and one still running."""
    start = utcnow()
    for seconds, status, tokens in [(1, "completed", 100), (2, "error", 50), (4, "completed", 30)]:
        db.runs.save(
            Run(
                uid,
                model="m",
                status=status,
                input_tokens=tokens,
                output_tokens=tokens // 2,
                started_at=start,
                ended_at=start + timedelta(seconds=seconds),
            )
        )
    db.runs.save(Run(uid, model="m", input_tokens=7, started_at=start))


def test_analyse_a_fixed_conversation(db: PraisonDB, uid: str, clock: FakeClock) -> None:
    s = db.session(uid, user_id=f"u-{uid}")
    for role, text in CONVERSATION:
        if role == "tool":
            s.add_tool(text, tool_name="flights" if "flight" in text else "hotels", agent="booker")
        else:
            s.add(role, text, agent="planner" if role == "assistant" else None)
        clock.advance(30)
    _runs(db, uid)
    figures = s.analyse()
    history = s.history()
    assert figures == {
        "session_id": uid,
        "messages": 6,
        "interactions": {"assistant": 2, "system": 0, "tool": 2, "user": 2},
        "agents": {"booker": 2, "planner": 2},
        "started_at": history[0].created_at.isoformat(),
        "ended_at": history[-1].created_at.isoformat(),
        "duration_s": round((history[-1].created_at - history[0].created_at).total_seconds(), 3),
        "tool_calls": 2,
        "tools": {"flights": 1, "hotels": 1},
        "runs": 4,
        "tokens": {"input": 187, "output": 90, "total": 277},
        "latency_ms": {"p50": 2000.0, "p95": 3800.0},  # R-7 over 1000, 2000, 4000
        "errors": 1,
        "error_rate": 0.25,
        "topics": ["lisbon", "alfama", "food", "flights", "hotel"],
        "satisfaction": None,  # no feedback given: never invented
    }
    assert 150 <= figures["duration_s"] < 160  # five clock steps of 30 s


def test_an_empty_session_has_no_figures_to_invent(db: PraisonDB, uid: str) -> None:
    figures = db.session(uid).analyse()
    assert figures["messages"] == 0 and figures["runs"] == 0 and figures["topics"] == []
    assert figures["duration_s"] is None and figures["started_at"] is None
    assert figures["latency_ms"] == {"p50": None, "p95": None}
    assert figures["error_rate"] is None and figures["satisfaction"] is None


def test_feedback_is_the_only_source_of_satisfaction(db: PraisonDB, uid: str) -> None:
    s = db.session(uid)
    s.add_user("hi")
    first = s.feedback(1)
    s.feedback(0.5, comment="slow but right")
    assert first["score"] == 1.0 and first["comment"] is None
    assert s.analyse()["satisfaction"] == {"count": 2, "mean": 0.75}
    records = db.session(uid).feedback_records()
    assert sorted((r["score"], r["comment"]) for r in records) == [
        (0.5, "slow but right"),
        (1.0, None),
    ]
    for bad in (1.5, -0.1, True, "5", float("nan")):
        with pytest.raises(ValidationError, match="from 0 to 1"):
            s.feedback(bad)  # type: ignore[arg-type]
    for comment in ("lone \ud800 surrogate", 5):
        with pytest.raises(ValidationError):
            s.feedback(1, comment=comment)  # type: ignore[arg-type]
    assert s.analyse()["satisfaction"] == {"count": 2, "mean": 0.75}
    # feedback travels with the session
    copy = db.sessions.import_session(
        {**s.export(), "session": {**s.export()["session"], "id": f"{uid}-c"}}
    )
    assert db.session(copy.id).analyse()["satisfaction"] == {"count": 2, "mean": 0.75}


def test_build_context_brings_profile_topics_duration_and_count(
    db: PraisonDB, uid: str, clock: FakeClock
) -> None:
    s = db.session(uid, user_id=f"u-{uid}", agent="travel")
    s.update_preference("language", "Portuguese")
    s.update_preference("budget", "low")
    for role, text in CONVERSATION:
        s.add(role, text)
        clock.advance(10)
    context = db.session(uid).build_context()
    assert context == {
        "session_id": uid,
        "user_id": f"u-{uid}",
        "agent": "travel",
        "preferences": {"budget": "low", "language": "Portuguese"},
        "recent_topics": ["lisbon", "alfama", "food", "flights", "hotel"],
        "interactions": 6,
        "duration_s": context["duration_s"],
        "last_active": s.history()[-1].created_at.isoformat(),
    }
    assert 50 <= context["duration_s"] < 55
    anonymous = db.session(f"{uid}-anon").build_context()
    assert anonymous["preferences"] == {} and anonymous["interactions"] == 0
    assert anonymous["duration_s"] is None and anonymous["recent_topics"] == []
