"""ManagedAgent: the real ``anthropic`` SDK against the local managed-agents server, with
every turn persisted through the conformance fixtures (so on every backend)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from praisondb import (
    BackendUnavailable,
    ConfigError,
    DbSessionAdapter,
    ManagedAgent,
    ManagedConfig,
    PraisonDB,
)
from tests.conformance.conftest import (
    multi_process,  # noqa: F401 - shared fixture
    worker_env,
)
from tests.fakes.anthropic_server import FAKE_API_KEY, FakeManagedAgentsServer


@pytest.fixture
def server() -> Iterator[FakeManagedAgentsServer]:
    with FakeManagedAgentsServer(step_delay=0.001) as fake:
        yield fake


def config(uid: str) -> ManagedConfig:
    return ManagedConfig(
        model="claude-sonnet-4-5",
        system="Be brief.",
        tools=["agent_toolset"],
        packages=["pandas", "httpx"],
        name=f"agent-{uid[:8]}",
    )


def agent_for(
    server: FakeManagedAgentsServer, db: PraisonDB | DbSessionAdapter | str, uid: str, **kw: object
) -> ManagedAgent:
    return ManagedAgent(
        config=config(uid),
        api_key=FAKE_API_KEY,
        db=db,
        session_id=uid,
        base_url=server.url,
        **kw,  # type: ignore[arg-type]
    )


def test_run_persists_the_turn_and_creates_remote_objects_once(
    server: FakeManagedAgentsServer, db: PraisonDB, uid: str
) -> None:
    agent = agent_for(server, db, uid)
    assert agent.retrieve_session() == {
        "id": None, "status": "none", "title": None, "usage": {"input_tokens": 0, "output_tokens": 0}
    }  # fmt: skip
    reply = agent.run("hello")
    assert reply == "Echo: hello (turn 1 of this conversation)"
    assert (
        agent.run("please run: ls -la") == "Echo: please run: ls -la (turn 2 of this conversation)"
    )
    (create_agent,) = server.requests_to("POST", r"^/v1/agents$")
    assert (
        create_agent.body["model"] == "claude-sonnet-4-5"
        and create_agent.body["system"] == "Be brief."
    )
    assert create_agent.body["tools"] == [{"type": "agent_toolset_20260401"}]
    assert create_agent.headers["anthropic-beta"] == "managed-agents-2026-04-01"
    (create_env,) = server.requests_to("POST", r"^/v1/environments$")
    assert create_env.body["config"]["packages"] == {"type": "packages", "pip": ["pandas", "httpx"]}
    assert len(server.requests_to("POST", r"^/v1/sessions$")) == 1
    streams = server.requests_to("GET", r"/events/stream$")
    assert streams and streams[0].query["event_deltas[]"] == ["agent.message"]
    sent = server.requests_to("POST", r"/events$")
    assert [r.body["events"][0]["content"][-1]["text"] for r in sent] == [
        "hello",
        "please run: ls -la",
    ]

    messages = db.messages.list(uid)
    assert [m.role for m in messages] == [
        "user",
        "assistant",
        "user",
        "assistant",
        "tool",
        "assistant",
    ]
    tool_use, tool_result = messages[3], messages[4]
    assert tool_use.content == [
        {
            "type": "tool_use",
            "id": tool_use.content[0]["id"],
            "name": "bash",
            "input": {"command": "ls -la"},
        }  # type: ignore[index]
    ]
    assert tool_result.content == "$ ls -la\nok" and tool_result.metadata["tool_name"] == "bash"
    runs = db.runs.list(uid)
    assert [r.status for r in runs] == ["completed", "completed"]
    assert all(
        r.model == "claude-sonnet-4-5" and r.input_tokens > 0 and r.output_tokens > 0 for r in runs
    )
    assert all(r.metadata["latency_ms"] > 0 for r in runs) and runs[1].metadata["tool_calls"] == 1
    assert {m.run_id for m in messages} == {r.id for r in runs}
    remote = agent.retrieve_session()
    assert set(remote) == {"id", "status", "title", "usage"} and remote["status"] == "idle"
    assert remote["usage"] == {
        "input_tokens": sum(r.input_tokens for r in runs),
        "output_tokens": sum(r.output_tokens for r in runs),
    }
    mapping = db.sessions.get(uid).metadata["managed_agent"]
    assert mapping["remote_session_id"] == remote["id"]


def test_stream_yields_text_as_it_arrives_and_persists_the_same(
    server: FakeManagedAgentsServer, db: PraisonDB, uid: str
) -> None:
    agent = agent_for(server, db, uid)
    pieces = list(agent.stream("tell me something long enough to arrive in pieces"))
    assert len(pieces) > 2
    text = "".join(pieces)
    assert (
        text
        == "Echo: tell me something long enough to arrive in pieces (turn 1 of this conversation)"
    )
    assert db.messages.list(uid)[-1].content == text
    assert db.runs.list(uid)[0].status == "completed"


def test_restart_reuses_agent_environment_and_session(
    server: FakeManagedAgentsServer, db: PraisonDB, uid: str
) -> None:
    agent_for(server, db, uid).run("first")
    again = agent_for(server, DbSessionAdapter(db), uid)  # a fresh object, as after a restart
    assert again.run("second") == "Echo: second (turn 2 of this conversation)"
    other = agent_for(server, db, uid)
    other.session_id = None
    other.run("elsewhere", session_id=f"{uid}-2")  # another local session: new remote session
    assert len(server.requests_to("POST", r"^/v1/agents$")) == 1
    assert len(server.requests_to("POST", r"^/v1/environments$")) == 1
    assert len(server.requests_to("POST", r"^/v1/sessions$")) == 2


@pytest.mark.usefixtures("multi_process")
def test_a_new_process_continues_the_remote_session(
    server: FakeManagedAgentsServer, db: PraisonDB, backend_url: str, uid: str
) -> None:
    agent_for(server, db, uid).run("before restart")
    code = (
        "import sys; from praisondb import ManagedAgent, PraisonDB\n"
        "from tests.e2e.test_managed_agent import config\n"
        "with PraisonDB(sys.argv[1]) as db:\n"
        "    print(ManagedAgent(config=config(sys.argv[2]), db=db, session_id=sys.argv[2]).run('after restart'))\n"
    )
    env = {**worker_env(), "ANTHROPIC_API_KEY": FAKE_API_KEY, "ANTHROPIC_BASE_URL": server.url}
    out = subprocess.run(
        [sys.executable, "-c", code, backend_url, uid], capture_output=True, text=True, env=env, timeout=120, check=False
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "Echo: after restart (turn 2 of this conversation)"
    assert len(server.requests_to("POST", r"^/v1/sessions$")) == 1
    assert len(server.requests_to("POST", r"^/v1/agents$")) == 1
    assert [m.content for m in db.messages.list(uid) if m.role == "user"] == [
        "before restart",
        "after restart",
    ]


def test_lost_remote_session_is_recreated_and_history_replayed(
    server: FakeManagedAgentsServer, db: PraisonDB, uid: str
) -> None:
    agent = agent_for(server, db, uid)
    agent.run("my name is Ada")
    server.forget_session(db.sessions.get(uid).metadata["managed_agent"]["remote_session_id"])
    resumed = agent_for(server, db, uid)
    assert resumed.run("what is my name?") == "Echo: what is my name? (turn 2 of this conversation)"
    last = server.requests_to("POST", r"/events$")[-1].body["events"][0]["content"]
    assert len(last) == 2 and "[user] my name is Ada" in last[0]["text"]
    assert (
        "[assistant] Echo: my name is Ada" in last[0]["text"]
        and last[1]["text"] == "what is my name?"
    )
    assert len(server.requests_to("POST", r"^/v1/sessions$")) == 2
    assert db.runs.list(uid)[-1].metadata["replayed_messages"] == 2


def test_transient_errors_are_retried(
    server: FakeManagedAgentsServer, db: PraisonDB, uid: str
) -> None:
    server.fail("POST", r"^/v1/agents$", 0)  # connection dropped
    server.fail("POST", r"^/v1/sessions$", 529)
    server.fail("POST", r"/events$", 429)
    server.fail("POST", r"/events$", 500)
    agent = agent_for(server, db, uid)
    assert agent.run("hi") == "Echo: hi (turn 1 of this conversation)"
    assert len(server.requests_to("POST", r"/events$")) == 3
    assert [m.role for m in db.messages.list(uid)] == ["user", "assistant"]


def test_a_dropped_event_stream_is_resumed_without_losing_or_doubling_events(
    server: FakeManagedAgentsServer, db: PraisonDB, uid: str
) -> None:
    agent = agent_for(server, db, uid)
    server.break_next_stream(after_events=3)
    assert agent.run("please run: date") == "Echo: please run: date (turn 1 of this conversation)"
    assert len(server.requests_to("GET", r"/events/stream$")) >= 2
    assert [m.role for m in db.messages.list(uid)] == ["user", "assistant", "tool", "assistant"]
    assert db.runs.list(uid)[0].metadata["tool_calls"] == 1


def test_exhausted_retries_fail_clearly_and_record_the_run(
    server: FakeManagedAgentsServer, db: PraisonDB, uid: str
) -> None:
    from praisondb.retry import Retry

    agent = agent_for(server, db, uid, retry=Retry(attempts=2, base_delay=0.01))
    agent.run("warm up")
    server.fail("POST", r"/events$", 503, times=5)
    with pytest.raises(BackendUnavailable) as caught:
        agent.run("doomed")
    assert caught.value.attempts == 2
    runs = db.runs.list(uid)
    assert runs[-1].status == "error" and "BackendUnavailable" in (runs[-1].error or "")


def test_authentication_error_is_a_config_error(
    server: FakeManagedAgentsServer, db: PraisonDB, uid: str
) -> None:
    agent = ManagedAgent(
        config=config(uid), api_key="sk-wrong", db=db, session_id=uid, base_url=server.url
    )
    with pytest.raises(ConfigError, match="API key"):
        agent.run("hi")
    assert len(server.requests) == 1  # authentication errors are not retried


def test_missing_api_key_is_reported_before_any_request(
    server: FakeManagedAgentsServer, db: PraisonDB, uid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY"):
        ManagedAgent(config=config(uid), db=db, base_url=server.url)
    with pytest.raises(ConfigError):
        ManagedAgent(provider="openai", config=config(uid), api_key="x", db=db)
    assert server.requests == []


def test_db_may_be_a_url(server: FakeManagedAgentsServer, backend_url: str, uid: str) -> None:
    with agent_for(server, backend_url, uid) as agent:
        agent.run("via url")
        assert agent.history()[0].content == "via url"
