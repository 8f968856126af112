"""PraisonDB as PraisonAI's lifecycle adapter, and DbSessionAdapter: persisted for real,
visible from a new process, on every backend."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import pytest

from praisondb import NotFound, PraisonDB
from tests.conformance.conftest import SESSION_WORKER, spawn_worker
from tests.faces import LoopThread, session_adapter, url_session_adapter

LIFECYCLE_METHODS = [
    "on_agent_start", "on_user_message", "on_agent_message", "on_tool_call", "on_agent_end",
    "on_run_start", "on_run_end", "get_runs", "export_session", "import_session",
    "on_trace_start", "on_trace_end", "on_span_start", "on_span_end", "get_traces", "close",
    "get_schema_version", "check_schema_compatibility",
]  # fmt: skip


def read_in_new_process(url: str, session_id: str, face: str) -> dict:  # type: ignore[type-arg]
    proc = spawn_worker("read", url, session_id, face=face, script=SESSION_WORKER)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return orjson.loads(out)  # type: ignore[no-any-return]


def drive_agent(db: PraisonDB, sid: str) -> None:
    assert db.on_agent_start("support", sid, user_id="u1", metadata={"role": "helper"}) == []
    db.on_trace_start(
        f"{sid}-t", session_id=sid, run_id=f"{sid}-r", agent_name="support", user_id="u1"
    )
    db.on_run_start(sid, f"{sid}-r", input_content="What is 2+2?", metadata={"model": "m-1"})
    db.on_user_message(sid, "What is 2+2?")
    db.on_span_start(f"{sid}-s", f"{sid}-t", "tool:calc", attributes={"x": 1})
    db.on_tool_call(sid, "calc", {"expr": "2+2", "deep": {"a": [1, 2]}}, {"value": 4, "steps": ["2+2"]},
                    metadata={"latency_ms": 3.5})  # fmt: skip
    db.on_span_end(f"{sid}-s", attributes={"ok": True})
    db.on_agent_message(sid, "It is 4.")
    db.on_run_end(
        sid,
        f"{sid}-r",
        output_content="It is 4.",
        metrics={"prompt_tokens": 11, "completion_tokens": 3},
    )
    db.on_trace_end(f"{sid}-t", status="ok")
    db.on_agent_end(sid, metadata={"reason": "done"})


def test_praisondb_has_the_whole_lifecycle_protocol(db: PraisonDB) -> None:
    missing = [name for name in LIFECYCLE_METHODS if not callable(getattr(db, name, None))]
    assert missing == []
    assert db.get_schema_version() == "1.0"
    ok, message = db.check_schema_compatibility()
    assert ok, message


def test_lifecycle_is_persisted_and_resumable(db: PraisonDB, uid: str) -> None:
    drive_agent(db, uid)
    assert db.sessions.get(uid).metadata["framework"] == "praisonai"  # sessions list shows it
    runs = db.get_runs(uid)
    assert [(r.id, r.status, r.input_tokens, r.output_tokens, r.model) for r in runs] == [
        (f"{uid}-r", "completed", 11, 3, "m-1")
    ]
    assert runs[0].metadata["input"] == "What is 2+2?" and runs[0].metadata["output"] == "It is 4."
    messages = db.messages.list(uid)
    assert [m.role for m in messages] == ["user", "tool", "assistant"]
    assert all(m.run_id == f"{uid}-r" for m in messages)
    tool = messages[1]
    assert orjson.loads(tool.content) == {"value": 4, "steps": ["2+2"]}  # type: ignore[arg-type]
    assert tool.metadata["tool"] == {"name": "calc", "args": {"expr": "2+2", "deep": {"a": [1, 2]}}}
    (trace,) = db.get_traces(session_id=uid)
    assert trace.trace_id == f"{uid}-t" and trace.status == "ok" and trace.ended_at is not None
    assert trace.agent_name == "support" and trace.run_id == f"{uid}-r" and trace.user_id == "u1"
    assert [(s.name, s.status, s.attributes) for s in trace.spans] == [
        ("tool:calc", "ok", {"x": 1, "ok": True})
    ]
    assert db.get_traces(user_id="u1", limit=1)[-1].user_id == "u1"
    info = db.sessions.get(uid)
    assert info.agent == "support" and info.metadata["agent_metadata"] == {"role": "helper"}
    assert info.metadata["agent_end_metadata"] == {"reason": "done"}
    resumed = db.on_agent_start("support", uid)
    assert (resumed[0].role, resumed[0].content) == ("user", "What is 2+2?")
    exported = db.export_session(uid)
    assert db.sessions.delete(uid)
    assert db.import_session(exported) == uid
    assert len(db.get_runs(uid)) == 1 and len(db.get_traces(session_id=uid)[0].spans) == 1


def test_run_end_without_start_is_still_recorded(db: PraisonDB, uid: str) -> None:
    db.on_run_end(
        uid, f"{uid}-lonely", output_content="x", status="error", metadata={"error": "boom"}
    )
    (run,) = db.get_runs(uid)
    assert run.status == "error" and run.error == "boom"


@pytest.mark.usefixtures("multi_process")
def test_a_new_process_sees_runs_traces_and_adapter_metadata(
    db: PraisonDB, backend_url: str, uid: str, face: str
) -> None:
    drive_agent(db, uid)
    adapter = session_adapter(db)
    assert adapter.set_metadata(uid, {"remote": {"id": "sesn_1"}})
    adapter.update_session_metadata(uid, usage={"input_tokens": 5}, ignored=None)
    seen = read_in_new_process(backend_url, uid, face)
    assert [r[:4] for r in seen["runs"]] == [[f"{uid}-r", "completed", 11, 3]]
    assert seen["traces"] == [[f"{uid}-t", "ok", ["tool:calc"]]]
    assert [m[0] for m in seen["messages"]] == ["user", "tool", "assistant"]
    assert seen["messages"][1][2]["tool"]["args"] == {"expr": "2+2", "deep": {"a": [1, 2]}}
    assert seen["metadata"]["remote"] == {"id": "sesn_1"}
    assert seen["metadata"]["usage"] == {"input_tokens": 5}
    assert "ignored" not in seen["metadata"]
    assert seen["history"][-1] == {"role": "assistant", "content": "It is 4."}


def test_adapter_session_store_interface(db: PraisonDB, uid: str) -> None:
    adapter = session_adapter(db)
    assert not adapter.session_exists(uid) and adapter.get_session(uid) is None
    assert adapter.get_chat_history(uid) == [] and adapter.get_metadata(uid) == {}
    assert adapter.add_message(uid, "user", "hi", {"k": 1})
    assert adapter.add_message(uid, "assistant", "hello")
    assert adapter.add_message(uid, "tool", "42", {"tool_name": "calc"})
    assert adapter.session_exists(uid)
    assert adapter.get_chat_history(uid) == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "tool", "content": "42"},
    ]
    assert adapter.get_chat_history(uid, max_messages=1) == [{"role": "tool", "content": "42"}]
    adapter.set_metadata(uid, {"agent_id": "a-1"})
    stored = adapter.get_session(uid)
    assert (
        stored is not None and stored.session_id == uid and stored.metadata == {"agent_id": "a-1"}
    )
    assert stored.message_count == 3
    assert adapter.clear_session(uid)
    assert adapter.get_chat_history(uid) == [] and adapter.get_metadata(uid) == {"agent_id": "a-1"}
    assert adapter.delete_session(uid) and not adapter.session_exists(uid)
    assert adapter.clear_session(uid) is False


def test_adapter_from_url_builds_its_own_db(
    backend_url: str, uid: str, face: str, face_loop: LoopThread, open_db: Callable[..., PraisonDB]
) -> None:
    with url_session_adapter(face, face_loop, backend_url) as adapter:
        assert adapter.db.database_url.secret == backend_url
        adapter.add_message(uid, "user", "from a URL")
        assert adapter.get_chat_history(uid) == [{"role": "user", "content": "from a URL"}]
    if backend_url != "memory://":  # a second memory:// store is a different store
        with open_db(backend_url) as other:
            assert [m.content for m in other.messages.list(uid)] == ["from a URL"]


@pytest.mark.usefixtures("multi_process")
def test_spans_started_in_one_process_end_in_another(
    db: PraisonDB, backend_url: str, uid: str, open_db: Callable[..., PraisonDB]
) -> None:
    db.sessions.create(uid)
    db.on_trace_start(f"{uid}-t", session_id=uid, agent_name="a")
    db.on_span_start(f"{uid}-s", f"{uid}-t", "tool:search", attributes={"q": "x"})
    with open_db(backend_url) as other:  # knows nothing of what db started
        other.on_span_end(f"{uid}-s", status="error", attributes={"hits": 0})
        other.on_trace_end(f"{uid}-t", status="error")
        with pytest.raises(NotFound):
            other.on_span_end(f"{uid}-never-started")
    span = db.conversations.get_span(f"{uid}-s")
    assert span.status == "error" and span.ended_at is not None
    assert span.attributes == {"q": "x", "hits": 0}
    assert db.conversations.get_span(f"{uid}-t").status == "error"
