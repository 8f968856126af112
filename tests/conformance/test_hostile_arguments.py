"""Nothing but PraisonDBError leaves the public API, whatever the arguments.

Each public call of the repositories (sessions, messages, state, checkpoints, runs) and
of Session objects is made with one argument replaced by a hostile value: wrong types,
huge and negative ints, NaN, control characters, lone surrogates, empty strings, None
where it is not allowed. The call may succeed or raise a PraisonDBError subclass
(ValidationError mostly); any other exception is a bug.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from praisondb import PraisonDB, PraisonDBError, ValidationError
from praisondb.model import Message, Run

HOSTILE: list[Any] = [
    None,
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",
    "line\nbreak",
    "x" * 300,
    2**63,
    -(2**63) - 1,
    2**70,
    -1,
    0,
    math.nan,
    math.inf,
    -0.0,
    1.5,
    True,
    b"bytes",
    [],
    ["list"],
    {},
    {"k": object()},
    ("tuple",),
    object(),
    dt.datetime(2026, 1, 1),
    Message("s", "user", "hi"),
]
HOSTILE_IDS = [f"{type(v).__name__}{i}" for i, v in enumerate(HOSTILE)]

Call = Callable[[PraisonDB, str, Any], object]

CALLS: dict[str, Call] = {
    # sessions
    "sessions.create id": lambda db, s, v: db.sessions.create(v),
    "sessions.create user_id": lambda db, s, v: db.sessions.create(s + "n", user_id=v),
    "sessions.create title": lambda db, s, v: db.sessions.create(s + "t", title=v),
    "sessions.create metadata": lambda db, s, v: db.sessions.create(s + "m", metadata=v),
    "sessions.create forked_at_seq": lambda db, s, v: db.sessions.create(s + "f", forked_at_seq=v),
    "sessions.create parent_id": lambda db, s, v: db.sessions.create(s + "p", parent_id=v),
    "sessions.get": lambda db, s, v: db.sessions.get(v),
    "sessions.exists": lambda db, s, v: db.sessions.exists(v),
    "sessions.get_or_create": lambda db, s, v: db.sessions.get_or_create(v),
    "sessions.list limit": lambda db, s, v: db.sessions.list(limit=v),
    "sessions.list cursor": lambda db, s, v: db.sessions.list(cursor=v),
    "sessions.list user_id": lambda db, s, v: db.sessions.list(user_id=v),
    "sessions.list agent": lambda db, s, v: db.sessions.list(agent=v),
    "sessions.list updated_after": lambda db, s, v: db.sessions.list(updated_after=v),
    "sessions.list updated_before": lambda db, s, v: db.sessions.list(updated_before=v),
    "sessions.count user_id": lambda db, s, v: db.sessions.count(user_id=v),
    "sessions.count updated_after": lambda db, s, v: db.sessions.count(updated_after=v),
    "sessions.iterate page_size": lambda db, s, v: list(db.sessions.iterate(page_size=v)),
    "sessions.update title": lambda db, s, v: db.sessions.update(s, title=v),
    "sessions.update metadata": lambda db, s, v: db.sessions.update(s, metadata=v),
    "sessions.update id": lambda db, s, v: db.sessions.update(v, title="t"),
    "sessions.delete": lambda db, s, v: db.sessions.delete(v),
    "sessions.cleanup": lambda db, s, v: db.sessions.cleanup(v, dry_run=True),
    "sessions.verify_token": lambda db, s, v: db.sessions.verify_token(v, "secret"),
    "sessions.verify_token secret": lambda db, s, v: db.sessions.verify_token("a.b", v),
    "sessions.export": lambda db, s, v: db.sessions.export(v),
    "sessions.import_session": lambda db, s, v: db.sessions.import_session(v),
    # messages
    "messages.append session": lambda db, s, v: db.messages.append(v, "user", "hi"),
    "messages.append role": lambda db, s, v: db.messages.append(s, v, "hi"),
    "messages.append content": lambda db, s, v: db.messages.append(s, "user", v),
    "messages.append block": lambda db, s, v: db.messages.append(s, "user", [{"t": v}]),
    "messages.append metadata": lambda db, s, v: db.messages.append(s, "user", "hi", v),
    "messages.append run_id": lambda db, s, v: db.messages.append(s, "user", "hi", run_id=v),
    "messages.extend item": lambda db, s, v: db.messages.extend(s, [v]),
    "messages.extend batch": lambda db, s, v: db.messages.extend(s, v),
    "messages.extend id": lambda db, s, v: db.messages.extend(
        s, [{"role": "user", "content": "x", "id": v}]
    ),
    "messages.extend created_at": lambda db, s, v: db.messages.extend(
        s, [{"role": "user", "content": "x", "created_at": v}]
    ),
    "messages.list last": lambda db, s, v: db.messages.list(s, last=v),
    "messages.list limit": lambda db, s, v: db.messages.list(s, limit=v),
    "messages.list after_seq": lambda db, s, v: db.messages.list(s, after_seq=v),
    "messages.list before_seq": lambda db, s, v: db.messages.list(s, before_seq=v),
    "messages.list session": lambda db, s, v: db.messages.list(v),
    "messages.iterate after_seq": lambda db, s, v: list(db.messages.iterate(s, after_seq=v)),
    "messages.iterate batch": lambda db, s, v: list(db.messages.iterate(s, batch=v)),
    "messages.count": lambda db, s, v: db.messages.count(v),
    "messages.delete from_seq": lambda db, s, v: db.messages.delete(s, from_seq=v, to_seq=0),
    "messages.delete to_seq": lambda db, s, v: db.messages.delete(s, from_seq=10**6, to_seq=v),
    # state
    "state.get key": lambda db, s, v: db.state.get(v),
    "state.get scope": lambda db, s, v: db.state.get("k", scope=v),
    "state.set value": lambda db, s, v: db.state.set("k", v, scope=f"session:{s}"),
    "state.set key": lambda db, s, v: db.state.set(v, 1, scope=f"session:{s}"),
    "state.set scope": lambda db, s, v: db.state.set("k", 1, scope=v),
    "state.set ttl": lambda db, s, v: db.state.set("k", 1, scope=f"session:{s}", ttl=v),
    "state.set expected_version": lambda db, s, v: db.state.set(
        "k", 1, scope=f"session:{s}", expected_version=v
    ),
    "state.compare_and_set": lambda db, s, v: db.state.compare_and_set(
        "k", 1, v, scope=f"session:{s}"
    ),
    "state.delete key": lambda db, s, v: db.state.delete(v, scope=f"session:{s}"),
    "state.delete expected_version": lambda db, s, v: db.state.delete(
        "k", scope=f"session:{s}", expected_version=v
    ),
    "state.incr amount": lambda db, s, v: db.state.incr("n", v, scope=f"session:{s}"),
    "state.incr ttl": lambda db, s, v: db.state.incr("n", 1, scope=f"session:{s}", ttl=v),
    "state.incr key": lambda db, s, v: db.state.incr(v, 1, scope=f"session:{s}"),
    "state.list scope": lambda db, s, v: db.state.list(v),
    "state.list prefix": lambda db, s, v: db.state.list(f"session:{s}", v),
    "state.list limit": lambda db, s, v: db.state.list(f"session:{s}", limit=v),
    "state.items": lambda db, s, v: db.state.items(f"session:{s}", v),
    "state.clear": lambda db, s, v: db.state.clear(v),
    # checkpoints
    "checkpoints.create session": lambda db, s, v: db.checkpoints.create(v),
    "checkpoints.create label": lambda db, s, v: db.checkpoints.create(s, v),
    "checkpoints.create state": lambda db, s, v: db.checkpoints.create(s, state=v),
    "checkpoints.get": lambda db, s, v: db.checkpoints.get(v),
    "checkpoints.list": lambda db, s, v: db.checkpoints.list(v),
    "checkpoints.delete": lambda db, s, v: db.checkpoints.delete(v),
    # runs
    "runs.start session": lambda db, s, v: db.runs.start(v),
    "runs.start model": lambda db, s, v: db.runs.start(s, model=v),
    "runs.start run_id": lambda db, s, v: db.runs.start(s, run_id=v),
    "runs.start metadata": lambda db, s, v: db.runs.start(s, metadata=v),
    "runs.end run_id": lambda db, s, v: db.runs.end(v),
    "runs.end status": lambda db, s, v: db.runs.end(db.runs.start(s).id, status=v),
    "runs.end input_tokens": lambda db, s, v: db.runs.end(db.runs.start(s).id, input_tokens=v),
    "runs.end output_tokens": lambda db, s, v: db.runs.end(db.runs.start(s).id, output_tokens=v),
    "runs.end error": lambda db, s, v: db.runs.end(db.runs.start(s).id, error=v),
    "runs.end metadata": lambda db, s, v: db.runs.end(db.runs.start(s).id, metadata=v),
    "runs.save run": lambda db, s, v: db.runs.save(v),
    "runs.save field": lambda db, s, v: db.runs.save(Run(s, input_tokens=v)),
    "runs.save status": lambda db, s, v: db.runs.save(Run(s, status=v)),
    "runs.save started_at": lambda db, s, v: db.runs.save(Run(s, started_at=v)),
    "runs.get": lambda db, s, v: db.runs.get(v),
    "runs.list session": lambda db, s, v: db.runs.list(v),
    "runs.list limit": lambda db, s, v: db.runs.list(s, limit=v),
    # spans (the PraisonAI lifecycle protocol)
    "get_traces limit": lambda db, s, v: db.get_traces(s, limit=v),
    "get_traces session": lambda db, s, v: db.get_traces(v),
    "get_runs limit": lambda db, s, v: db.get_runs(s, limit=v),
    "on_trace_start metadata": lambda db, s, v: db.on_trace_start(
        uuid.uuid4().hex, session_id=s, metadata={"m": v}
    ),
    "on_trace_start session": lambda db, s, v: db.on_trace_start(uuid.uuid4().hex, session_id=v),
    "on_span_start attributes": lambda db, s, v: _span(db, s, {"a": v}),
    "on_span_start name": lambda db, s, v: _span(db, s, {}, name=v),
    "on_user_message metadata": lambda db, s, v: db.on_user_message(s, "hi", {"m": v}),
    "on_user_message content": lambda db, s, v: db.on_user_message(s, v),
    "on_tool_call args": lambda db, s, v: db.on_tool_call(s, "tool", {"a": v}, v),
    "on_run_start metadata": lambda db, s, v: db.on_run_start(
        s, uuid.uuid4().hex, metadata={"m": v}
    ),
    "on_run_end metrics": lambda db, s, v: db.on_run_end(
        s, uuid.uuid4().hex, metrics={"input_tokens": v}
    ),
    "on_agent_start metadata": lambda db, s, v: db.on_agent_start("agent", s, metadata={"m": v}),
    # Session objects
    "db.session id": lambda db, s, v: db.session(v).refresh(),
    "db.session user_id": lambda db, s, v: db.session(uuid.uuid4().hex, user_id=v).refresh(),
    "Session.add role": lambda db, s, v: db.session(s).add(v, "hi"),
    "Session.add content": lambda db, s, v: db.session(s).add("user", v),
    "Session.add_user": lambda db, s, v: db.session(s).add_user(v),
    "Session.add metadata": lambda db, s, v: db.session(s).add("user", "hi", v),
    "Session.history last": lambda db, s, v: db.session(s).history(last=v),
    "Session.context last": lambda db, s, v: db.session(s).context(last=v),
    "Session.update title": lambda db, s, v: db.session(s).update(title=v),
    "Session.update metadata": lambda db, s, v: db.session(s).update(x=v),
    "Session.state set": lambda db, s, v: db.session(s).state.set("k", v),
    "Session.state key": lambda db, s, v: db.session(s).state.set(v, 1),
    "Session.state ttl": lambda db, s, v: db.session(s).state.set("k", 1, ttl=v),
    "Session.state incr": lambda db, s, v: db.session(s).state.incr("n", v),
    "Session.state get": lambda db, s, v: db.session(s).state.get(v),
    "Session.temp set": lambda db, s, v: db.session(s).temp.set("k", v),
    "Session.checkpoint": lambda db, s, v: db.session(s).checkpoint(v),
    "Session.restore": lambda db, s, v: db.session(s).restore(v),
    "Session.fork": lambda db, s, v: db.session(s).fork(v),
    "Session.compact": lambda db, s, v: db.session(s).compact(keep_last=v),
    "Session.token secret": lambda db, s, v: db.session(s).token(v),
    "Session.token ttl": lambda db, s, v: db.session(s).token("secret", ttl=v),
    "Session.restore_version": lambda db, s, v: db.session(s).restore_version(v),
    "Session.save_version": lambda db, s, v: db.session(s).save_version(v),
    # long-term memory
    "memory quality_threshold": lambda db, s, v: db.memory(quality_threshold=v),
    "memory max_memories": lambda db, s, v: db.memory(max_memories=v),
    "memory embed": lambda db, s, v: db.memory(embed=v).add("x", user_id=s),
    "memory recency_half_life": lambda db, s, v: db.memory(recency_half_life=v),
    "memory.add text": lambda db, s, v: db.memory().add(v, user_id=s),
    "memory.add user_id": lambda db, s, v: db.memory().add("x", user_id=v),
    "memory.add agent": lambda db, s, v: db.memory().add("x", agent=v),
    "memory.add app": lambda db, s, v: db.memory().add("x", app=v),
    "memory.add importance": lambda db, s, v: db.memory().add("x", user_id=s, importance=v),
    "memory.add relevance": lambda db, s, v: db.memory().add("x", user_id=s, relevance=v),
    "memory.add metadata": lambda db, s, v: db.memory().add("x", user_id=s, metadata=v),
    "memory.add id": lambda db, s, v: db.memory().add("x", user_id=s, id=v),
    "memory.add scorer": lambda db, s, v: _scored(db, s, v),
    "memory.search query": lambda db, s, v: db.memory().search(v, user_id=s),
    "memory.search limit": lambda db, s, v: db.memory().search("x", user_id=s, limit=v),
    "memory.search user_id": lambda db, s, v: db.memory().search("x", user_id=v),
    "memory.list limit": lambda db, s, v: db.memory().list(user_id=s, limit=v),
    "memory.list cursor": lambda db, s, v: db.memory().list(user_id=s, cursor=v),
    "memory.list agent": lambda db, s, v: db.memory().list(agent=v),
    "memory.count app": lambda db, s, v: db.memory().count(app=v),
    "memory.get": lambda db, s, v: db.memory().get(v),
    "memory.delete": lambda db, s, v: db.memory().delete(v),
    "memory.clear": lambda db, s, v: db.memory().clear(user_id=v),
    "memory.set_quality_scorer": lambda db, s, v: db.memory().set_quality_scorer(v),
    "db.session memory": lambda db, s, v: db.session(s, user_id=s, memory=v).context(),
    "Session.recall query": lambda db, s, v: db.session(s, user_id=s, memory=True).recall(v),
    "Session.recall limit": lambda db, s, v: db.session(s, user_id=s, memory=True).recall(
        "x", limit=v
    ),
}


def _scored(db: PraisonDB, sid: str, value: Any) -> object:
    memory = db.memory()
    memory.set_quality_scorer(lambda item: value)
    return memory.add("x", user_id=sid)


def _span(db: PraisonDB, sid: str, attributes: dict[str, Any], name: Any = "span") -> None:
    trace = uuid.uuid4().hex
    db.on_trace_start(trace, session_id=sid)
    db.on_span_start(uuid.uuid4().hex, trace, name, attributes=attributes)


@pytest.fixture(scope="module")
def seeded(db: PraisonDB) -> str:
    """One session with messages, state and a run that every hostile call aims at."""
    sid = "hostile-" + uuid.uuid4().hex
    db.sessions.create(sid)
    db.messages.extend(sid, [{"role": "user", "content": str(i)} for i in range(3)])
    db.state.set("n", 1, scope=f"session:{sid}")
    db.runs.start(sid)
    return sid


LENIENT = {
    # PraisonAI's hooks store whatever an agent hands them, made into JSON data (text
    # for what JSON cannot hold): nothing is refused, and nothing may escape either.
    "on_trace_start metadata",
    "on_span_start attributes",
    "on_user_message metadata",
    "on_tool_call args",
    "on_run_start metadata",
    "on_agent_start metadata",
}


@pytest.mark.parametrize("call", sorted(CALLS))
def test_only_praisondb_errors_escape(db: PraisonDB, seeded: str, call: str) -> None:
    escaped: list[str] = []
    typed = 0
    for value in HOSTILE:
        try:
            CALLS[call](db, seeded, value)
        except PraisonDBError:
            typed += 1
        except Exception as exc:
            escaped.append(
                f"{value!r:.40}: {type(exc).__module__}.{type(exc).__name__}: {exc!s:.200}"
            )
    assert not escaped, f"{call} let non-praisondb errors out:\n" + "\n".join(escaped)
    assert typed > 0 or call in LENIENT, f"{call} accepted every hostile value"
    assert db.messages.count(seeded) >= 3


def test_hostile_writes_leave_stored_data_alone(db: PraisonDB, seeded: str) -> None:
    before = [(m.seq, m.content) for m in db.messages.list(seeded)]
    for value in (2**63, math.nan, "\ud800", object()):
        with pytest.raises(ValidationError):
            db.messages.append(seeded, "user", [{"t": value}])
        with pytest.raises(ValidationError):
            db.state.set("n", {"v": value}, scope=f"session:{seeded}")
    assert [(m.seq, m.content) for m in db.messages.list(seeded)][: len(before)] == before
    assert db.state.get("n", scope=f"session:{seeded}") is not None


def test_lifecycle_hooks_store_what_json_cannot_hold_as_text(db: PraisonDB, uid: str) -> None:
    """PraisonAI's hooks never refuse an agent's metadata: non-JSON values become text."""
    odd = {
        "big": 2**70,
        "when": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
        "bad": "a\ud800",
        "zero": -0.0,
        "nan": math.nan,
        "pair": (1, 2),
        3: "int key",
    }
    want = {
        "big": str(2**70),
        "when": "2026-01-02T03:04:05+00:00",
        "bad": "a\ufffd",
        "zero": 0.0,
        "nan": "nan",
        "pair": [1, 2],
        "3": "int key",
    }
    db.sessions.create(uid)
    db.on_trace_start(uid, session_id=uid, metadata=odd)
    db.on_run_start(uid, "run-" + uid, metadata=odd)
    db.on_user_message(uid, "hi", odd)
    (trace,) = db.get_traces(uid)
    assert trace.metadata == want
    run = db.runs.get("run-" + uid)
    assert run.metadata == want
    assert db.messages.list(uid)[-1].metadata == want
    assert math.copysign(1.0, trace.metadata["zero"]) == 1.0
