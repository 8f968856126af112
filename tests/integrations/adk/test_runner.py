"""ADK's ``Runner`` end to end on every backend: a conversation is remembered across
turns and across service objects, tool calls and their responses come back intact,
``app:``/``user:`` state lands in praisondb's scopes and ``temp:`` nowhere, and what
the Runner wrote is an ordinary praisondb session."""

from __future__ import annotations

from typing import Any

import pytest
from google.adk.agents import LlmAgent
from google.adk.agents.run_config import RunConfig, StreamingMode
from google.adk.runners import Runner
from google.adk.tools.tool_context import ToolContext
from google.genai import types

from praisondb import PraisonDB
from praisondb.integrations.adk import PraisonDBSessionService
from tests.integrations.adk.conftest import VIA, Opener
from tests.integrations.adk.fake_llm import ScriptedLlm, call, text

APP = "shop"


async def say(
    runner: Runner, user: str, sid: str, prompt: str, streamed: bool = False
) -> list[Any]:
    """One user turn; the events the Runner yielded."""
    message = types.Content(role="user", parts=[types.Part(text=prompt)])
    config = RunConfig(streaming_mode=StreamingMode.SSE if streamed else StreamingMode.NONE)
    return [
        event
        async for event in runner.run_async(
            user_id=user, session_id=sid, new_message=message, run_config=config
        )
    ]


def runner(agent: LlmAgent, service: PraisonDBSessionService) -> Runner:
    return Runner(agent=agent, app_name=APP, session_service=service)


@pytest.mark.parametrize("streamed", [False, True], ids=["run", "streamed"])
@pytest.mark.parametrize("via", VIA)
def test_the_runner_remembers_the_conversation(
    run_with: Any, uid: str, via: str, streamed: bool
) -> None:
    async def main(opener: Opener) -> None:
        model = ScriptedLlm(replies=[text("Paris"), text("About 2.1 million")])
        agent = LlmAgent(name="guide", model=model)
        first = opener.service()
        await first.create_session(app_name=APP, user_id="ann", session_id=uid)
        events = await say(runner(agent, first), "ann", uid, "Capital of France?", streamed)
        assert events[-1].content.parts[0].text == "Paris"
        # a new service object (a new process, in real life) resumes the conversation
        await say(runner(agent, opener.service()), "ann", uid, "Its population?", streamed)
        assert model.history() == ["Capital of France?", "Paris", "Its population?"]

        session = await opener.service().get_session(app_name=APP, user_id="ann", session_id=uid)
        assert session is not None
        assert [e.author for e in session.events] == ["user", "guide", "user", "guide"]
        assert not any(e.partial for e in session.events)  # streamed chunks are not stored

        def as_praisondb_sees_it(db: PraisonDB) -> tuple[Any, list[str], Any]:
            info = db.sessions.get(uid)
            messages = db.messages.list(uid)
            return info, [m.role for m in messages], messages[0]

        info, roles, first_message = await opener.inspect(as_praisondb_sees_it)
        assert (info.user_id, info.agent, info.message_count) == ("ann", APP, 4)
        assert roles == ["user", "assistant", "user", "assistant"]
        block = first_message.content[0]  # the event whole, as ADK wrote it
        assert block["content"]["parts"][0]["text"] == "Capital of France?"
        assert block["id"] == first_message.id == session.events[0].id

    run_with(main, via)


def remember(likes: str, tool_context: ToolContext) -> str:
    """Remember what the user likes."""
    tool_context.state["user:likes"] = likes
    tool_context.state["app:last_tool"] = "remember"
    tool_context.state["temp:scratch"] = "not kept"
    tool_context.state["turns"] = tool_context.state.get("turns", 0) + 1
    return f"noted: {likes}"


@pytest.mark.parametrize("via", VIA)
def test_tool_calls_and_state_come_back_intact(run_with: Any, uid: str, via: str) -> None:
    async def main(opener: Opener) -> None:
        asked = call("remember", likes="jazz")
        model = ScriptedLlm(replies=[asked, text("Noted."), text("You like jazz.")])
        agent = LlmAgent(name="helper", model=model, tools=[remember])
        service = opener.service()
        await service.create_session(app_name=APP, user_id="bo", session_id=uid)
        await say(runner(agent, service), "bo", uid, "I like jazz")

        await say(runner(agent, opener.service()), "bo", uid, "What do I like?")
        assert model.history() == [
            "I like jazz",
            "remember({'likes': 'jazz'})",
            "remember -> {'result': 'noted: jazz'}",
            "Noted.",
            "What do I like?",
        ]
        session = await opener.service().get_session(app_name=APP, user_id="bo", session_id=uid)
        assert session is not None
        assert session.state == {"user:likes": "jazz", "app:last_tool": "remember", "turns": 1}

        def stored(db: PraisonDB) -> tuple[list[str], Any, Any, Any, str]:
            roles = [m.role for m in db.messages.list(uid)]
            user = db.state.get("shop/likes", scope="user:bo")
            app = db.state.get("shop/last_tool", scope="app")
            own = db.state.get("adk", scope=f"session:{uid}")
            everything = repr([m.content for m in db.messages.list(uid)])
            return roles, user, app, own, everything

        roles, user, app, own, everything = await opener.inspect(stored)
        assert roles == ["user", "assistant", "tool", "assistant", "user", "assistant"]
        assert (user, app, own["state"]) == ("jazz", "remember", {"turns": 1})
        assert "scratch" not in everything and "not kept" not in everything  # temp: never stored

    run_with(main, via)


def test_a_session_listed_by_praisondb_and_adk(run_with: Any, uid: str) -> None:
    async def main(opener: Opener) -> None:
        model = ScriptedLlm(replies=[text("hello")])
        service = opener.service()
        await service.create_session(app_name=APP, user_id=f"u-{uid}", session_id=uid)
        await say(runner(LlmAgent(name="greeter", model=model), service), f"u-{uid}", uid, "hi")
        listed = await service.list_sessions(app_name=APP, user_id=f"u-{uid}")
        assert [s.id for s in listed.sessions] == [uid]
        assert listed.sessions[0].events == []
        ids = await opener.inspect(
            lambda db: [s.id for s in db.sessions.list(user_id=f"u-{uid}").items]
        )
        assert ids == [uid]

    run_with(main)
