"""The SDK's ``Runner`` end to end on every backend: a conversation is remembered across
turns and across session objects, tool calls and their outputs come back intact, and
what the Runner wrote is an ordinary praisondb session."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from agents import Agent, RunConfig, Runner, SessionSettings, function_tool

from praisondb import PraisonDB
from praisondb.integrations.openai_agents import PraisonDBSession
from tests.backends import BACKENDS
from tests.integrations.openai_agents.conftest import VIA, Opener
from tests.integrations.openai_agents.scripted import ScriptedModel, call, text


async def run(agent: Agent[Any], prompt: str, streamed: bool, **options: Any) -> Any:
    if not streamed:
        return await Runner.run(agent, prompt, **options)
    result = Runner.run_streamed(agent, prompt, **options)
    async for _ in result.stream_events():
        pass
    return result


@pytest.mark.parametrize("streamed", [False, True], ids=["run", "streamed"])
@pytest.mark.parametrize("via", VIA)
def test_the_runner_remembers_the_conversation(
    run_with: Any, uid: str, via: str, streamed: bool
) -> None:
    async def main(opener: Opener) -> None:
        model = ScriptedModel(text("Paris"), text("About 2.1 million"))
        agent = Agent(name="guide", model=model)
        first = await run(agent, "Capital of France?", streamed, session=opener.session(uid))
        assert first.final_output == "Paris"
        # a new session object (a new process, in real life) resumes the conversation
        second = await run(agent, "Its population?", streamed, session=opener.session(uid))
        assert second.final_output == "About 2.1 million"
        assert model.history() == ["Capital of France?", "Paris", "Its population?"]

        items = await opener.session(uid).get_items()
        assert [i.get("role") for i in items] == ["user", "assistant", "user", "assistant"]
        assert items[0] == {"role": "user", "content": "Capital of France?"}
        assert items[1]["content"][0]["text"] == "Paris"  # type: ignore[index,typeddict-item]

        def as_praisondb_sees_it(db: PraisonDB) -> tuple[int, list[str], list[Any]]:
            info = db.sessions.get(uid)
            messages = db.messages.list(uid)
            return info.message_count, [m.role for m in messages], [m.content for m in messages]

        count, roles, contents = await opener.inspect(as_praisondb_sees_it)
        assert count == 4
        assert roles == ["user", "assistant", "user", "assistant"]
        assert contents[0] == "Capital of France?"  # plain text: every praisondb face reads it

    run_with(main, via)


@function_tool
def weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


@pytest.mark.parametrize("streamed", [False, True], ids=["run", "streamed"])
def test_tool_calls_and_outputs_come_back_intact(run_with: Any, uid: str, streamed: bool) -> None:
    async def main(opener: Opener) -> None:
        asked = call("weather", city="Oslo")
        model = ScriptedModel(asked, text("It is sunny."), text("You asked about Oslo."))
        agent = Agent(name="forecaster", model=model, tools=[weather])
        result = await run(agent, "Weather in Oslo?", streamed, session=opener.session(uid))
        assert result.final_output == "It is sunny."

        await run(agent, "Which city did I ask about?", streamed, session=opener.session(uid))
        resumed = model.inputs[-1]
        kinds = [i.get("type", "message") for i in resumed]
        assert kinds == ["message", "function_call", "function_call_output", "message", "message"]
        function_call, output = resumed[1], resumed[2]
        assert function_call["call_id"] == asked.call_id  # type: ignore[typeddict-item]
        assert function_call["arguments"] == '{"city": "Oslo"}'  # type: ignore[typeddict-item]
        assert output["call_id"] == asked.call_id  # type: ignore[typeddict-item]
        assert output["output"] == "sunny in Oslo"  # type: ignore[typeddict-item]

        roles = await opener.inspect(lambda db: [m.role for m in db.messages.list(uid)])
        assert roles == ["user", "assistant", "tool", "assistant", "user", "assistant"]

    run_with(main)


def test_session_settings_limit_what_the_model_sees(run_with: Any, uid: str) -> None:
    async def main(opener: Opener) -> None:
        model = ScriptedModel(*(text(f"reply {n}") for n in range(4)))
        agent = Agent(name="counter", model=model)
        session = opener.session(uid, session_settings=SessionSettings(limit=2))
        for n in range(3):
            await Runner.run(agent, f"message {n}", session=session)
        assert model.history() == ["message 1", "reply 1", "message 2"]
        config = RunConfig(session_settings=SessionSettings(limit=4))
        await Runner.run(agent, "message 3", session=session, run_config=config)
        assert model.history() == ["message 1", "reply 1", "message 2", "reply 2", "message 3"]
        assert len(await session.get_items(limit=None)) == 2  # the session's own default
        assert len(await opener.session(uid).get_items()) == 8

    run_with(main)


@pytest.mark.backends(*(name for name in BACKENDS if name != "memory"))
def test_run_sync_from_two_threads_each_with_its_own_loop(backend_url: str, uid: str) -> None:
    """A URL session opens a database per event loop: ``Runner.run_sync`` runs one per
    thread, and the drivers of one loop cannot serve another. (memory:// is private to
    each database object: nothing to share across loops.)"""
    from praisondb.integrations.openai_agents import PraisonDBSession

    session = PraisonDBSession(uid, backend_url, auto_migrate=True)
    model = ScriptedModel(text("one"), text("two"))
    agent = Agent(name="sync", model=model)

    def turn(prompt: str) -> Any:
        return Runner.run_sync(agent, prompt, session=session)

    for prompt in ("first", "second"):
        asyncio.run(asyncio.to_thread(turn, prompt))  # a fresh thread, hence a fresh loop
    assert model.history() == ["first", "one", "second"]

    async def close() -> int:
        count = len(await session.get_items())
        await session.close()
        return count

    assert asyncio.run(close()) == 4


def test_the_run_context_user_labels_the_session(run_with: Any, uid: str) -> None:
    async def main(opener: Opener) -> None:
        agent = Agent(name="helper", model=ScriptedModel(text("hello")))
        await Runner.run(agent, "hi", session=opener.session(uid), context={"user_id": "u-7"})
        user = await opener.inspect(lambda db: db.sessions.get(uid).user_id)
        assert user == "u-7"
        listed = await opener.inspect(
            lambda db: [s.id for s in db.sessions.list(user_id="u-7").items]
        )
        assert uid in listed

    run_with(main)


def test_an_exported_conversation_resumes_on_another_backend(run_with: Any, uid: str) -> None:
    """An ordinary praisondb session: export it, import it elsewhere, the Runner goes on."""

    async def main(opener: Opener) -> None:
        asked = call("weather", city="Rome")
        model = ScriptedModel(asked, text("Sunny."), text("Rome, as before."))
        agent = Agent(name="mover", model=model, tools=[weather])
        await Runner.run(agent, "Weather in Rome?", session=opener.session(uid))
        exported = await opener.inspect(lambda db: db.sessions.export(uid))
        before = await opener.session(uid).get_items()

        with PraisonDB("memory://") as elsewhere:
            elsewhere.sessions.import_session(exported)
            moved = PraisonDBSession(uid, elsewhere)
            assert await moved.get_items() == before
            await Runner.run(agent, "Which city?", session=moved)
            assert model.inputs[-1][:4] == before
            assert len(await moved.get_items()) == 6

    run_with(main)
