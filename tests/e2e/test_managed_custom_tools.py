"""ManagedAgent custom (client-side) tools: the real ``anthropic`` SDK against the local
managed-agents server, every call persisted on every backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from praisondb import ConfigError, ManagedAgent, ManagedConfig, PraisonDB
from praisondb.agents.managed import CustomTool, ToolCallLimitExceeded, ToolHandler
from tests.fakes.anthropic_server import FAKE_API_KEY, FakeManagedAgentsServer

LOOKUP = CustomTool(
    name="lookup_order",
    description="Look up an order by id.",
    input_schema={
        "type": "object",
        "properties": {"order_id": {"type": "string"}},
        "required": ["order_id"],
    },
)


@pytest.fixture
def server() -> Iterator[FakeManagedAgentsServer]:
    with FakeManagedAgentsServer(step_delay=0.001) as fake:
        yield fake


class Orders:
    """A handler that remembers every call it got."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, args: dict[str, Any]) -> str:
        self.calls.append(args)
        if args.get("order_id") == "bad":
            raise KeyError("no order bad at postgresql://app:s3cret@db/orders?sslpassword=k3y")
        return f"order {args.get('order_id')} ships tomorrow"


def agent_for(
    server: FakeManagedAgentsServer,
    db: PraisonDB,
    uid: str,
    handlers: dict[str, ToolHandler],
    **kw: Any,
) -> ManagedAgent:
    config = ManagedConfig(
        model="claude-sonnet-4-5", tools=["agent_toolset", LOOKUP], name=f"tools-{uid[:8]}"
    )
    return ManagedAgent(
        config=config,
        api_key=FAKE_API_KEY,
        db=db,
        session_id=uid,
        base_url=server.url,
        tool_handlers=handlers,
        **kw,
    )


def sent_results(server: FakeManagedAgentsServer) -> list[dict[str, Any]]:
    return [
        e
        for r in server.requests_to("POST", r"/events$")
        for e in r.body["events"]
        if e["type"] == "user.custom_tool_result"
    ]


def test_a_custom_tool_runs_and_its_result_reaches_the_model(
    server: FakeManagedAgentsServer, db: PraisonDB, uid: str
) -> None:
    orders = Orders()
    agent = agent_for(server, db, uid, {"lookup_order": orders})
    prompt = 'where is it? call: lookup_order {"order_id": "A1"}'
    reply = agent.run(prompt)
    assert orders.calls == [{"order_id": "A1"}]
    assert reply == (
        f"Echo: {prompt} (turn 1 of this conversation)\n"
        "Tool lookup_order returned: order A1 ships tomorrow"
    )
    (created,) = server.requests_to("POST", r"^/v1/agents$")
    assert created.body["tools"][1] == {
        "type": "custom",
        "name": "lookup_order",
        "description": "Look up an order by id.",
        "input_schema": dict(LOOKUP.input_schema),
    }
    (result,) = sent_results(server)
    remote_session = server.sessions[
        db.sessions.get(uid).metadata["managed_agent"]["remote_session_id"]
    ]
    (use,) = [e for e in remote_session.events if e["type"] == "agent.custom_tool_use"]
    assert result == {
        "type": "user.custom_tool_result",
        "custom_tool_use_id": use["id"],
        "content": [{"type": "text", "text": "order A1 ships tomorrow"}],
        "is_error": False,
    }

    messages = db.messages.list(uid)
    assert [m.role for m in messages] == ["user", "assistant", "tool", "assistant"]
    assert messages[1].content == [
        {"type": "tool_use", "id": use["id"], "name": "lookup_order", "input": {"order_id": "A1"}}
    ]
    tool = messages[2]
    assert tool.content == "order A1 ships tomorrow"
    assert tool.metadata["tool_name"] == "lookup_order"
    assert tool.metadata["tool_use_id"] == use["id"] and tool.metadata["is_error"] is False
    (run,) = db.runs.list(uid)
    assert run.status == "completed" and run.metadata["tool_calls"] == 1
    assert {m.run_id for m in messages} == {run.id}
    assert agent.retrieve_session()["status"] == "idle"


def test_two_calls_in_one_turn_and_a_failing_handler(
    server: FakeManagedAgentsServer, db: PraisonDB, uid: str
) -> None:
    orders = Orders()
    agent = agent_for(server, db, uid, {"lookup_order": orders})
    reply = agent.run(
        'call: lookup_order {"order_id": "bad"} then call: lookup_order {"order_id": "B2"}'
    )
    assert orders.calls == [{"order_id": "bad"}, {"order_id": "B2"}]
    lines = reply.splitlines()
    assert (
        lines[1]
        == "Tool lookup_order failed: KeyError: 'no order bad at postgresql://app:***@db/orders?sslpassword=***'"
    )
    assert lines[2] == "Tool lookup_order returned: order B2 ships tomorrow"
    failed, ok = sent_results(server)
    assert failed["is_error"] is True and ok["is_error"] is False
    # no password leaves the process, neither the netloc one nor one in the query string
    assert "s3cret" not in str(failed) and "k3y" not in str(failed)

    messages = db.messages.list(uid)
    assert [m.role for m in messages] == [
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
        "assistant",
    ]
    uses = [messages[1].content[0]["id"], messages[3].content[0]["id"]]  # type: ignore[index]
    assert [messages[2].metadata["tool_use_id"], messages[4].metadata["tool_use_id"]] == uses
    assert [failed["custom_tool_use_id"], ok["custom_tool_use_id"]] == uses
    assert messages[2].metadata["is_error"] is True and "***" in str(messages[2].content)
    assert messages[4].metadata["is_error"] is False
    (run,) = db.runs.list(uid)
    assert run.status == "completed" and run.metadata["tool_calls"] == 2


def test_handlers_may_return_text_blocks_and_bad_returns_are_errors(
    server: FakeManagedAgentsServer, db: PraisonDB, uid: str
) -> None:
    answers: list[Any] = [
        [{"type": "text", "text": "part one, "}, {"type": "text", "text": "part two"}],
        42,
    ]
    agent = agent_for(server, db, uid, {"lookup_order": lambda args: answers.pop(0)})
    reply = agent.run("call: lookup_order {} call: lookup_order {}")
    assert reply.splitlines()[1:] == [
        "Tool lookup_order returned: part one, part two",
        "Tool lookup_order failed: TypeError: the handler for 'lookup_order' returned int; "
        "return a str or a list of text blocks",
    ]
    first, second = sent_results(server)
    assert first["content"] == [
        {"type": "text", "text": "part one, "},
        {"type": "text", "text": "part two"},
    ]
    assert second["is_error"] is True
    assert db.runs.list(uid)[0].status == "completed"


def test_handlers_must_match_declared_tools(
    server: FakeManagedAgentsServer, db: PraisonDB, uid: str
) -> None:
    with pytest.raises(ConfigError, match=r"\['lookup_order'\] are declared .* no handler"):
        agent_for(server, db, uid, {})
    with pytest.raises(
        ConfigError, match=r"\['refund'\] that ManagedConfig.tools does not declare"
    ):
        agent_for(server, db, uid, {"lookup_order": Orders(), "refund": Orders()})
    with pytest.raises(ConfigError, match="not callable"):
        agent_for(server, db, uid, {"lookup_order": "nope"})  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match="max_tool_calls"):
        agent_for(server, db, uid, {"lookup_order": Orders()}, max_tool_calls=0)
    with pytest.raises(ConfigError, match="input_schema"):
        CustomTool(name="x", description="d", input_schema={"type": "string"})
    with pytest.raises(ConfigError, match="name"):
        CustomTool(name="has space", description="d")
    with pytest.raises(ConfigError, match="more than once"):
        ManagedConfig(model="m", tools=[LOOKUP, dict(LOOKUP.params())])
    with pytest.raises(ConfigError, match="unknown fields"):
        ManagedConfig(model="m", tools=[{**LOOKUP.params(), "handler": "x"}])
    assert server.requests == []


def test_tool_definitions_shape_the_fingerprint_handlers_do_not() -> None:
    plain = ManagedConfig(model="m", tools=[LOOKUP])
    as_dict = ManagedConfig(model="m", tools=[LOOKUP.params()])
    other = ManagedConfig(model="m", tools=[CustomTool("lookup_order", "Another description.")])
    assert plain.fingerprint() == as_dict.fingerprint() != other.fingerprint()
    assert [t.name for t in as_dict.custom_tools] == ["lookup_order"]


def test_a_tool_without_a_handler_ends_the_turn_requiring_action(
    server: FakeManagedAgentsServer, db: PraisonDB, uid: str
) -> None:
    orders = Orders()
    agent = agent_for(server, db, uid, {"lookup_order": orders})
    reply = agent.run('call: launch_rockets {"count": 3}')
    assert reply == "" and orders.calls == [] and sent_results(server) == []
    messages = db.messages.list(uid)
    assert [m.role for m in messages] == ["user", "assistant"]
    use = messages[1].content[0]
    assert use["name"] == "launch_rockets" and use["input"] == {"count": 3}  # type: ignore[index]
    (run,) = db.runs.list(uid)
    assert run.status == "requires_action" and run.metadata["waiting_on"] == [use["id"]]  # type: ignore[index]
    # the next turn goes on in the same remote session
    assert agent.run("never mind") == "Echo: never mind (turn 2 of this conversation)"
    assert [r.status for r in db.runs.list(uid)] == ["requires_action", "completed"]


def test_a_runaway_tool_loop_is_stopped(
    server: FakeManagedAgentsServer, db: PraisonDB, uid: str
) -> None:
    orders = Orders()
    agent = agent_for(server, db, uid, {"lookup_order": orders}, max_tool_calls=2)
    with pytest.raises(ToolCallLimitExceeded, match="max_tool_calls=2"):
        agent.run(" ".join(f'call: lookup_order {{"order_id": "{i}"}}' for i in range(4)))
    assert [c["order_id"] for c in orders.calls] == ["0", "1"]
    (run,) = db.runs.list(uid)
    assert run.status == "error" and "max_tool_calls=2" in (run.error or "")
    assert run.metadata["tool_calls"] == 2
    interrupts = [
        e
        for r in server.requests_to("POST", r"/events$")
        for e in r.body["events"]
        if e["type"] == "user.interrupt"
    ]
    assert len(interrupts) == 1
    assert agent.run("hello again") == "Echo: hello again (turn 2 of this conversation)"


@pytest.mark.parametrize("after_events", [3, 4, 5, 6])
def test_a_dropped_stream_never_runs_a_handler_twice(
    server: FakeManagedAgentsServer, db: PraisonDB, uid: str, after_events: int
) -> None:
    """Events per stream: user.message, running, model_request_start, custom_tool_use (4),
    idle requires_action, the echoed result (6), ...: drop before, at and after the result."""
    orders = Orders()
    agent = agent_for(server, db, uid, {"lookup_order": orders})
    server.break_next_stream(after_events=after_events)
    reply = agent.run('call: lookup_order {"order_id": "C3"}')
    assert orders.calls == [{"order_id": "C3"}]
    assert reply.endswith("Tool lookup_order returned: order C3 ships tomorrow")
    assert len(server.requests_to("GET", r"/events/stream$")) == 2
    assert len(sent_results(server)) == 1
    assert [m.role for m in db.messages.list(uid)] == ["user", "assistant", "tool", "assistant"]
    (run,) = db.runs.list(uid)
    assert run.status == "completed" and run.metadata["tool_calls"] == 1


def test_a_result_already_in_the_history_is_not_run_again(
    server: FakeManagedAgentsServer, db: PraisonDB, uid: str
) -> None:
    """The call was answered elsewhere before the stream dropped (ahead of the tool use):
    the replay sees the use and its result, so the handler must not run."""
    orders = Orders()
    agent = agent_for(server, db, uid, {"lookup_order": orders})
    publish = server.publish

    def publish_and_answer(session: Any, event: dict[str, Any], *, delta: bool = False) -> None:
        publish(session, event, delta=delta)
        stop = event.get("stop_reason") or {}
        for use_id in stop.get("event_ids", []) if stop.get("type") == "requires_action" else []:
            answer = {
                "type": "user.custom_tool_result",
                "custom_tool_use_id": use_id,
                "content": [{"type": "text", "text": "answered elsewhere"}],
            }
            server.send_events(session, [answer])  # in the log before any client can see it

    server.publish = publish_and_answer  # type: ignore[method-assign]
    server.break_next_stream(after_events=3)  # the client never sees the use live
    reply = agent.run('call: lookup_order {"order_id": "D4"}')
    assert reply.endswith("Tool lookup_order returned: answered elsewhere")
    assert orders.calls == [] and sent_results(server) == []
    assert len(server.requests_to("GET", r"/events/stream$")) == 2
    assert [m.role for m in db.messages.list(uid)] == ["user", "assistant", "assistant"]
    (run,) = db.runs.list(uid)
    assert run.status == "completed" and run.metadata["tool_calls"] == 0


def test_a_rejected_result_send_is_retried_once_the_handler_ran_once(
    server: FakeManagedAgentsServer, db: PraisonDB, uid: str
) -> None:
    calls: list[dict[str, Any]] = []

    def flaky_network(args: dict[str, Any]) -> str:
        calls.append(args)
        server.fail("POST", r"/events$", 429)  # the result's first send is rate limited
        return "done"

    agent = agent_for(server, db, uid, {"lookup_order": flaky_network})
    assert agent.run("call: lookup_order {}").endswith("Tool lookup_order returned: done")
    assert calls == [{}]
    assert len(server.requests_to("POST", r"/events$")) == 3  # message, 429, result
    assert db.runs.list(uid)[0].metadata["tool_calls"] == 1


def test_a_result_accepted_but_its_reply_lost_is_not_an_error(
    server: FakeManagedAgentsServer, db: PraisonDB, uid: str
) -> None:
    calls: list[dict[str, Any]] = []

    def reply_lost(args: dict[str, Any]) -> str:
        calls.append(args)
        server.fail("POST", r"/events$", -1)  # stored by the server, the reply never arrives
        return "done"

    agent = agent_for(server, db, uid, {"lookup_order": reply_lost})
    assert agent.run("call: lookup_order {}").endswith("Tool lookup_order returned: done")
    assert calls == [{}]
    sent = [r.body["events"][0]["type"] for r in server.requests_to("POST", r"/events$")]
    # the message, the result (reply lost), its retry (refused: already answered)
    assert sent == ["user.message", "user.custom_tool_result", "user.custom_tool_result"]
    tool_messages = [m for m in db.messages.list(uid) if m.role == "tool"]
    assert len(tool_messages) == 1 and tool_messages[0].content == "done"
    assert db.runs.list(uid)[0].status == "completed"


def test_the_server_refuses_unknown_tool_use_ids(server: FakeManagedAgentsServer, uid: str) -> None:
    import anthropic

    client = anthropic.Anthropic(api_key=FAKE_API_KEY, base_url=server.url, max_retries=0)
    agent = client.beta.agents.create(model="m", name=uid, tools=[LOOKUP.params()])  # type: ignore[list-item]
    env = client.beta.environments.create(name=uid)
    session = client.beta.sessions.create(agent=agent.id, environment_id=env.id)
    result: Any = {
        "type": "user.custom_tool_result",
        "custom_tool_use_id": "sevt_nope",
        "content": [],
    }
    with pytest.raises(anthropic.BadRequestError, match="sevt_nope"):
        client.beta.sessions.events.send(session.id, events=[result])
    bad_tool: Any = {
        "type": "custom",
        "name": "x y",
        "description": "d",
        "input_schema": {"type": "object"},
    }
    with pytest.raises(anthropic.BadRequestError, match="invalid"):
        client.beta.agents.create(model="m", name=uid, tools=[bad_tool])
    client.close()


@pytest.mark.backends("sqlite")
def test_tool_calls_reach_analytics(
    server: FakeManagedAgentsServer, backend_url: str, uid: str, tmp_path: Path
) -> None:
    orders = Orders()
    with PraisonDB(backend_url, analytics_url=f"chdb://{tmp_path / 'analytics'}") as db:
        agent = agent_for(server, db, uid, {"lookup_order": orders})
        agent.run('call: lookup_order {"order_id": "bad"} call: lookup_order {"order_id": "E5"}')
        assert db.analytics is not None
        db.analytics.flush()
        rows = db.analytics.query(
            "SELECT tool, status, latency_ms FROM praisondb.events WHERE type = 'tool_call' "
            "AND session_id = {sid:String} ORDER BY ts",
            {"sid": uid},
        ).rows
    assert [(r[0], r[1]) for r in rows] == [("lookup_order", "error"), ("lookup_order", "ok")]
    assert all(r[2] >= 0 for r in rows)
