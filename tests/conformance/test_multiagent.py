"""Multi-agent sessions on every backend and face: messages attributed to the agent that
wrote them, state every agent shares (compare-and-set, across processes), and
``run_agent`` recording an exchange with a plain callable or a ManagedAgent."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from praisondb import Conflict, PraisonDB, Session, ValidationError
from praisondb.core import multiagent
from praisondb.model import AGENT_KEY
from tests.conformance.conftest import SESSION_WORKER, spawn_worker
from tests.fakes.anthropic_server import FakeManagedAgentsServer


def _who(session: Session, **kw: Any) -> list[tuple[str, Any]]:
    return [(m.role, m.content) for m in session.history(**kw)]


def test_every_add_method_records_the_writing_agent(db: PraisonDB, uid: str) -> None:
    s = db.session(uid)
    s.add_user("plan a trip", agent="planner")
    s.add_assistant("day 1: museum", agent="planner")
    s.add_assistant("draft ready", {"lang": "en"}, agent="writer")
    s.add_tool("42", tool_name="calc", agent="writer")
    s.add_system("be brief", agent="writer")
    s.add("assistant", "no agent")
    s.add_assistant("deferred", agent="writer", defer=True)
    assert _who(s, agent="planner") == [("user", "plan a trip"), ("assistant", "day 1: museum")]
    assert _who(s, agent="writer") == [
        ("assistant", "draft ready"),
        ("tool", "42"),
        ("system", "be brief"),
        ("assistant", "deferred"),
    ]
    assert _who(s, agent="writer", last=2) == [("system", "be brief"), ("assistant", "deferred")]
    assert s.history(agent="nobody") == []
    stored = db.messages.list(uid)
    assert stored[2].metadata == {"lang": "en", AGENT_KEY: "writer"}
    assert stored[3].metadata == {"tool_name": "calc", AGENT_KEY: "writer"}
    assert AGENT_KEY not in stored[5].metadata  # a message without an agent has none
    assert len(s.history()) == 7  # the filter is only a view


def test_an_agents_last_messages_are_found_walking_back_page_by_page(
    db: PraisonDB, uid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(multiagent, "HISTORY_PAGE", 3)  # many pages from a short session
    s = db.session(uid)
    for i in range(1, 15):
        s.add_assistant(f"m{i}", agent="writer" if i in (1, 2, 6, 13) else "researcher", defer=True)
    s.flush()
    texts = [m.content for m in s.history(agent="writer", last=3)]
    assert texts == ["m2", "m6", "m13"]
    assert [m.content for m in s.history(agent="writer", last=10)] == ["m1", "m2", "m6", "m13"]
    assert [m.content for m in s.history(agent="writer", last=1)] == ["m13"]
    assert s.history(agent="writer", last=0) == []
    assert len(s.history(agent="researcher")) == 10
    with pytest.raises(ValidationError):
        s.history(agent="writer", last=-1)


def test_agent_names_are_checked(db: PraisonDB, uid: str) -> None:
    s = db.session(uid)
    for bad in ("", "a\nb", 5):
        with pytest.raises(ValidationError):
            s.add_assistant("x", agent=bad)  # type: ignore[arg-type]
        with pytest.raises(ValidationError):
            s.history(agent=bad)  # type: ignore[arg-type]
    assert db.messages.count(uid) == 0


def test_shared_state_is_one_space_for_every_agent_with_compare_and_set(
    db: PraisonDB, uid: str
) -> None:
    researcher, writer = db.session(uid), db.session(uid)
    researcher.shared_state["topic"] = "otters"
    assert writer.shared_state["topic"] == "otters"
    entry = writer.shared_state.entry("topic")
    assert entry is not None
    writer.shared_state.compare_and_set("topic", "sea otters", entry.version)
    with pytest.raises(Conflict):  # the researcher's version is stale now
        researcher.shared_state.compare_and_set("topic", "river otters", entry.version)
    assert researcher.shared_state.get("topic") == "sea otters"
    with pytest.raises(Conflict):  # 0: must not exist yet
        researcher.shared_state.compare_and_set("topic", "x", 0)
    researcher.shared_state.compare_and_set("draft", 1, 0)
    assert writer.shared_state.modify("notes", lambda n: [*n, "a"], []).value == ["a"]
    assert researcher.shared_state.modify("notes", lambda n: [*n, "b"], []).value == ["a", "b"]
    assert researcher.shared_state.to_dict() == {
        "topic": "sea otters",
        "draft": 1,
        "notes": ["a", "b"],
    }
    # it is the session's state, so forks and deletes carry it
    assert researcher.state["shared:topic"] == "sea otters"
    assert researcher.fork().shared_state.get("notes") == ["a", "b"]
    researcher.delete()
    assert db.session(uid).shared_state.to_dict() == {}


@pytest.mark.usefixtures("multi_process")
def test_shared_state_modify_loses_nothing_across_processes(
    backend_url: str, face: str, db: PraisonDB, uid: str
) -> None:
    rounds, workers = 10, 3
    procs = [
        spawn_worker("shared", backend_url, uid, str(rounds), face=face, script=SESSION_WORKER)
        for _ in range(workers)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
    assert db.session(uid).shared_state.get("counter") == rounds * workers


def test_run_agent_with_a_callable_stores_the_exchange_as_a_run(db: PraisonDB, uid: str) -> None:
    s = db.session(uid)

    def researcher(session: Any, prompt: str) -> str:
        session.shared_state["facts"] = ["otters hold hands"]
        return f"facts for {prompt!r}"

    def writer(session: Any, prompt: str) -> list[dict[str, Any]]:
        return [{"type": "text", "text": f"{prompt}: {session.shared_state['facts'][0]}"}]

    assert s.run_agent("researcher", "otters", researcher) == "facts for 'otters'"
    assert s.run_agent("writer", "write", writer) == [
        {"type": "text", "text": "write: otters hold hands"}
    ]
    assert _who(s, agent="researcher") == [("user", "otters"), ("assistant", "facts for 'otters'")]
    assert [m.role for m in s.history(agent="writer")] == ["user", "assistant"]
    runs = db.runs.list(uid)
    assert [(r.status, r.metadata["agent"], r.metadata["input"]) for r in runs] == [
        ("completed", "researcher", "otters"),
        ("completed", "writer", "write"),
    ]
    assert all(r.ended_at is not None and r.metadata["latency_ms"] >= 0 for r in runs)
    assert {m.run_id for m in s.history(agent="writer")} == {runs[1].id}


def test_run_agent_records_a_failing_agent_and_reraises(db: PraisonDB, uid: str) -> None:
    s = db.session(uid)

    def broken(session: Any, prompt: str) -> str:
        raise RuntimeError("model unavailable")

    with pytest.raises(RuntimeError, match="model unavailable"):
        s.run_agent("critic", "review", broken)
    with pytest.raises(ValidationError, match="must return the reply"):
        s.run_agent("critic", "review", lambda session, prompt: 42)  # type: ignore[arg-type,return-value]
    (failed, wrong) = db.runs.list(uid)
    assert failed.status == "error" and failed.error == "RuntimeError: model unavailable"
    assert wrong.status == "error" and "ValidationError" in (wrong.error or "")
    assert _who(s, agent="critic") == [("user", "review"), ("user", "review")]
    with pytest.raises(ValidationError):
        s.run_agent("critic", "", broken)
    with pytest.raises(ValidationError):
        s.run_agent("critic", "review", "not an agent")  # type: ignore[arg-type]


@pytest.fixture
def server() -> Iterator[FakeManagedAgentsServer]:
    with FakeManagedAgentsServer(step_delay=0.001) as fake:
        yield fake


@pytest.mark.usefixtures("multi_process")
def test_a_researcher_and_a_writer_in_their_own_processes_share_state(
    backend_url: str, face: str, db: PraisonDB, uid: str, server: FakeManagedAgentsServer
) -> None:
    """Two ManagedAgents against the local managed-agents server, one process each: the
    writer's prompt is built from what the researcher left in shared state."""
    db.session(uid, user_id=f"u-{uid}")
    replies = []
    for name in ("researcher", "writer"):
        proc = spawn_worker(
            "agent", backend_url, uid, name, server.url, face=face, script=SESSION_WORKER
        )
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        replies.append(orjson.loads(out))
    research, text = replies
    assert research == "Echo: find three facts about otters (turn 1 of this conversation)"
    assert text.startswith(f"Echo: write a paragraph from: {research}")
    s = db.session(uid)
    assert s.shared_state.get("findings") == research
    assert s.shared_state.get("authors") == ["researcher", "writer"]
    assert _who(s, agent="researcher") == [
        ("user", "find three facts about otters"),
        ("assistant", research),
    ]
    assert [m.content for m in s.history(agent="writer") if m.role == "assistant"] == [text]
    runs = db.runs.list(uid)
    assert [(r.metadata["agent"], r.status) for r in runs] == [
        ("researcher", "completed"),
        ("writer", "completed"),
    ]
    # each agent has its own remote session; the writer's was fed the history so far
    meta = s.metadata
    assert (
        meta["managed_agent:researcher"]["remote_session_id"]
        != (meta["managed_agent:writer"]["remote_session_id"])
    )
    assert runs[1].metadata["replayed_messages"] == 2


def test_run_agent_refuses_a_managed_agent_on_another_database(
    db: PraisonDB, uid: str, server: FakeManagedAgentsServer, tmp_path: Any
) -> None:
    from praisondb import ConfigError, ManagedAgent, ManagedConfig
    from tests.fakes.anthropic_server import FAKE_API_KEY

    other = f"sqlite:///{tmp_path / 'other.db'}"
    config = ManagedConfig(model="claude-sonnet-4-5", name="elsewhere")
    bot = ManagedAgent(config=config, api_key=FAKE_API_KEY, db=other, base_url=server.url)
    with bot, pytest.raises(ConfigError, match="another database"):
        db.session(uid).run_agent("elsewhere", "hi", bot)
    assert db.messages.count(uid) == 0 and server.requests_to("POST", r"^/v1/sessions$") == []
