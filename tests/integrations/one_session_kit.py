"""One conversation per framework, written through the framework's own runner, then read
back and continued: what tests/integrations/test_one_session.py moves between backends.

Each framework gets ``write`` (the first turn, on one store) and ``resume`` (what the
framework sees there, then the next turn). Running ``resume`` on the source and on a
copy must give the same answers: that is what "continues exactly" means.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from praisondb import PraisonDB
from tests.conftest import require_module

for _module in ("agents", "langgraph.checkpoint.base", "google.adk"):
    require_module(_module)

from agents import Agent, Runner, function_tool, set_tracing_disabled  # noqa: E402
from google.adk.agents import LlmAgent  # noqa: E402
from google.adk.runners import Runner as AdkRunner  # noqa: E402
from google.adk.tools.tool_context import ToolContext  # noqa: E402
from google.genai import types  # noqa: E402
from langgraph.types import Command  # noqa: E402

from praisondb.integrations.adk import PraisonDBSessionService  # noqa: E402
from praisondb.integrations.langgraph import PraisonDBSaver  # noqa: E402
from praisondb.integrations.openai_agents import PraisonDBSession  # noqa: E402
from tests.integrations.adk import fake_llm  # noqa: E402
from tests.integrations.langgraph.graphs import review_graph  # noqa: E402
from tests.integrations.openai_agents import scripted  # noqa: E402

set_tracing_disabled(True)  # traces would go to OpenAI's servers

APP = "shop"
USER = "ann"


@dataclass(frozen=True)
class Ids:
    """The three sessions of one test (unique per test, so stores can be shared)."""

    langgraph: str
    openai: str
    adk: str

    @classmethod
    def of(cls, uid: str) -> Ids:
        return cls(f"lg-{uid}", f"oa-{uid}", f"adk-{uid}")

    def all(self) -> list[str]:
        return [self.langgraph, self.openai, self.adk]


def migrate(url: str) -> None:
    """Create the schema (the framework faces open URLs without migrating)."""
    with PraisonDB(url, auto_migrate=True) as db:
        db.ping()


def write_all(target: str | PraisonDB, ids: Ids) -> None:
    """The first turn of each framework's conversation, on a URL or a database object."""
    write_langgraph(target, ids.langgraph)
    asyncio.run(write_openai(target, ids.openai))
    asyncio.run(write_adk(target, ids.adk))


def resume_all(url: str, ids: Ids) -> dict[str, Any]:
    """What each framework reads on ``url``, and how its next turn goes."""
    return {
        "langgraph": resume_langgraph(url, ids.langgraph),
        "openai": asyncio.run(resume_openai(url, ids.openai)),
        "adk": asyncio.run(resume_adk(url, ids.adk)),
    }


# -- LangGraph: a graph that stops at an interrupt (a pending write) -------------------------
def _config(thread: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


def write_langgraph(target: str | PraisonDB, thread: str) -> None:
    """Runs to the interrupt; the run id (as LangGraph's server sets it) feeds the run index."""
    config = {**_config(thread), "metadata": {"run_id": f"run-{thread}"}}
    with PraisonDBSaver(target) as saver:
        asked = review_graph(saver).invoke({"log": ["spec"]}, config)
    assert asked["__interrupt__"][0].value == {"question": "ship the draft of spec?"}


def langgraph_view(db: PraisonDB, thread: str) -> dict[str, Any]:
    """Everything LangGraph reads of the thread: the latest state with its tasks and
    interrupts, every checkpoint of the history and the pending writes of the latest."""
    saver = PraisonDBSaver(db)
    graph = review_graph(saver)
    state = graph.get_state(_config(thread))
    latest = saver.get_tuple(_config(thread))
    assert latest is not None
    return {
        "values": state.values,
        "next": state.next,
        "config": state.config,
        "parent_config": state.parent_config,
        "metadata": state.metadata,
        "created_at": state.created_at,
        "interrupts": [(i.id, i.value) for t in state.tasks for i in t.interrupts],
        "pending_writes": latest.pending_writes,
        "history": [
            (s.config["configurable"]["checkpoint_id"], s.values, s.next)
            for s in graph.get_state_history(_config(thread))
        ],
    }


def resume_langgraph(url: str, thread: str) -> dict[str, Any]:
    with PraisonDB(url) as db:
        before = langgraph_view(db, thread)
        done = review_graph(PraisonDBSaver(db)).invoke(Command(resume="yes"), _config(thread))
    return {"before": before, "after": done}


# -- OpenAI Agents SDK: a Runner turn with a tool call ---------------------------------------
@function_tool
def weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


async def write_openai(target: str | PraisonDB, sid: str) -> None:
    model = scripted.ScriptedModel(scripted.call("weather", city="Oslo"), scripted.text("Sunny."))
    agent = Agent(name="forecaster", model=model, tools=[weather])
    session = PraisonDBSession(sid, target, user_id=USER, agent="forecaster")
    try:
        result = await Runner.run(agent, "Weather in Oslo?", session=session)
    finally:
        await session.close()
    assert result.final_output == "Sunny."


async def resume_openai(url: str, sid: str) -> dict[str, Any]:
    session = PraisonDBSession(sid, url)
    try:
        items = await session.get_items()
        model = scripted.ScriptedModel(scripted.text("You asked about Oslo."))
        agent = Agent(name="forecaster", model=model, tools=[weather])
        await Runner.run(agent, "Which city did I ask about?", session=session)
    finally:
        await session.close()
    return {"items": items, "model_input": model.inputs[0]}


# -- Google ADK: a Runner turn whose tool writes session, user: and app: state ---------------
def remember(likes: str, tool_context: ToolContext) -> str:
    """Remember what the user likes."""
    tool_context.state["user:likes"] = likes
    tool_context.state["app:last_tool"] = "remember"
    tool_context.state["turns"] = tool_context.state.get("turns", 0) + 1
    return f"noted: {likes}"


async def _say(agent: LlmAgent, service: PraisonDBSessionService, sid: str, prompt: str) -> None:
    runner = AdkRunner(agent=agent, app_name=APP, session_service=service)
    message = types.Content(role="user", parts=[types.Part(text=prompt)])
    async for _ in runner.run_async(user_id=USER, session_id=sid, new_message=message):
        pass


async def write_adk(target: str | PraisonDB, sid: str) -> None:
    model = fake_llm.ScriptedLlm(
        replies=[fake_llm.call("remember", likes="jazz"), fake_llm.text("Noted.")]
    )
    async with PraisonDBSessionService(target) as service:
        await service.create_session(
            app_name=APP, user_id=USER, session_id=sid, state={"app:plan": "pro", "tier": 1}
        )
        await _say(
            LlmAgent(name="helper", model=model, tools=[remember]), service, sid, "I like jazz"
        )


async def resume_adk(url: str, sid: str) -> dict[str, Any]:
    model = fake_llm.ScriptedLlm(replies=[fake_llm.text("You like jazz.")])
    async with PraisonDBSessionService(url) as service:
        session = await service.get_session(app_name=APP, user_id=USER, session_id=sid)
        assert session is not None
        before = {
            "events": [e.model_dump(mode="json") for e in session.events],
            "state": dict(session.state),
            "last_update_time": session.last_update_time,
        }
        agent = LlmAgent(name="helper", model=model, tools=[remember])
        await _say(agent, service, sid, "What do I like?")
        after = await service.get_session(app_name=APP, user_id=USER, session_id=sid)
        assert after is not None
    return {
        "before": before,
        "model_input": model.history(0),
        "state_after": dict(after.state),
        "authors_after": [e.author for e in after.events],
    }
