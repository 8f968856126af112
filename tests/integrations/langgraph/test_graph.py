"""A real StateGraph on PraisonDBSaver: runs, resumes in a new process, time-travels.

Each step of the conversation runs in a process of its own (``child.py``), sync or async
face, so nothing survives but what the store holds: the interrupt's pending write, the
channel values, the history LangGraph time-travels through.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from praisondb import ConfigError, PraisonDB, ValidationError
from praisondb.aio import AsyncPraisonDB
from praisondb.integrations.langgraph import PraisonDBSaver
from tests.backends import TestBackend
from tests.integrations.langgraph.graphs import chat_graph

ROOT = Path(__file__).parents[3]


def in_new_process(url: str, thread: str, actions: str, face: str) -> list[dict[str, Any]]:
    """Run ``actions`` in a fresh interpreter; the state after each."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out = subprocess.run(
        [sys.executable, "-m", "tests.integrations.langgraph.child", url, thread, actions, face],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return [json.loads(line) for line in out.stdout.strip().splitlines()]


@pytest.mark.parametrize("face", ["sync", "async"])
def test_resume_in_a_new_process_then_time_travel(
    multi_process: TestBackend, backend_url: str, thread_id: str, face: str
) -> None:
    (asked,) = in_new_process(backend_url, thread_id, "start", face)
    assert asked["next"] == ["approve"]
    assert asked["interrupts"] == [{"question": "ship the draft of spec?"}]
    assert asked["values"] == {"log": ["spec", "draft of spec"]}

    done, travelled = in_new_process(backend_url, thread_id, "resume,travel", face)
    assert done["next"] == []
    assert done["values"] == {
        "log": ["spec", "draft of spec", "verdict:yes"],
        "verdict": "yes",
    }

    assert travelled["values"] == {
        "log": ["spec", "draft of spec", "edited", "verdict:no"],
        "verdict": "no",
    }
    assert travelled["checkpoints"] > done["checkpoints"]  # the old branch is still there
    with PraisonDB(backend_url, auto_migrate=True) as db:
        info = db.sessions.get(thread_id)  # the thread is an ordinary praisondb session
        assert info.agent == "langgraph"
        keys = [e.key for e in db.state.list(f"session:{thread_id}", "langgraph/head/")]
        assert keys == ["langgraph/head/"]


def test_the_same_graph_sync_and_async_in_one_process(
    backend: TestBackend, backend_url: str, thread_id: str
) -> None:
    """A URL opens both faces: invoke and ainvoke continue one thread (on memory://
    both faces share the one store the saver opened)."""
    import asyncio

    with PraisonDB(backend_url, auto_migrate=True) as migrated:
        migrated.sessions.count()  # the schema, before the saver opens the URL its own way
    saver = PraisonDBSaver(backend_url)
    graph = chat_graph(saver)
    config = {"configurable": {"thread_id": thread_id}}
    graph.invoke({"log": ["one"]}, config)

    async def then_async() -> dict[str, Any]:
        try:
            found: dict[str, Any] = await graph.ainvoke({"log": ["two"]}, config)
            assert (await graph.aget_state(config)).values == found
            if backend.multi_process:  # memory:// runs inline, with no drivers to close
                with pytest.raises(ConfigError, match="aclose"):
                    saver.close()  # its async drivers belong to this loop
            return found
        finally:
            await saver.aclose()

    second = asyncio.run(then_async())
    assert second == {
        "log": ["one", "think:one", "reply#1", "two", "think:two", "reply#2"],
        "turns": 2,
    }


def test_a_saver_from_a_url_serves_one_event_loop_after_another(
    backend_url: str, thread_id: str
) -> None:
    """Each ``asyncio.run`` is a new loop; the drivers of the first cannot serve the next,
    so the saver opens the async face per loop, and a plain ``close`` ends the lot."""
    import asyncio

    with PraisonDB(backend_url, auto_migrate=True) as migrated:
        migrated.sessions.count()
    saver = PraisonDBSaver(backend_url)
    graph = chat_graph(saver)
    config = {"configurable": {"thread_id": thread_id}}
    for word in ("one", "two", "three"):
        asyncio.run(graph.ainvoke({"log": [word]}, config))
    state = graph.get_state(config)  # and the sync face, on the same thread
    saver.close()
    assert state.values["turns"] == 3
    assert state.values["log"][-3:] == ["three", "think:three", "reply#3"]


def test_a_face_without_its_database_says_what_to_pass(db: PraisonDB, thread_id: str) -> None:
    import asyncio

    graph = chat_graph(PraisonDBSaver(db))
    with pytest.raises(ConfigError, match="give it an AsyncPraisonDB, or a URL"):
        asyncio.run(graph.ainvoke({"log": ["x"]}, {"configurable": {"thread_id": thread_id}}))
    with pytest.raises(ConfigError, match="takes a URL, a PraisonDB or an AsyncPraisonDB"):
        PraisonDBSaver(object())  # type: ignore[arg-type]

    async def wrong_face() -> None:
        async with AsyncPraisonDB("memory://") as adb:
            with pytest.raises(ConfigError, match=r"give it a\s+PraisonDB"):
                chat_graph(PraisonDBSaver(adb)).invoke(
                    {"log": ["x"]}, {"configurable": {"thread_id": "t"}}
                )

    asyncio.run(wrong_face())


class Opaque:
    """What only pickle could store: a plain object with no serializer support."""

    def __init__(self) -> None:
        self.secret = 42


def test_a_pickle_only_value_is_refused_and_nothing_is_pickled(
    db: PraisonDB, thread_id: str
) -> None:
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
    from langgraph.graph import END, START, StateGraph
    from typing_extensions import TypedDict

    class Holder(TypedDict):
        thing: Any

    builder = StateGraph(Holder)
    builder.add_node("keep", lambda state: {"thing": Opaque()})
    builder.add_edge(START, "keep")
    builder.add_edge("keep", END)
    graph = builder.compile(checkpointer=PraisonDBSaver(db))
    with pytest.raises(
        ValidationError, match=r"Opaque.*without pickle.*never stores or loads pickle"
    ):
        graph.invoke({"thing": 1}, {"configurable": {"thread_id": thread_id}})
    with pytest.raises(ConfigError, match="pickle_fallback=True"):
        PraisonDBSaver(db, serde=JsonPlusSerializer(pickle_fallback=True))
    for found in db.state.list(f"session:{thread_id}", "langgraph/"):
        assert "pickle" not in json.dumps(found.value)


@pytest.mark.parametrize(
    "thread", ["", "x" * 300, "tab\there", "lg~looks-mapped", "ünïcødé 🧵", "a/b:c|d"]
)
def test_any_thread_id_round_trips(db: PraisonDB, thread: str) -> None:
    """Ids praisondb refuses as session ids map to ``lg~<sha256>``, reversibly."""
    graph = chat_graph(PraisonDBSaver(db))
    config = {"configurable": {"thread_id": thread}}
    graph.invoke({"log": ["hi"]}, config)
    state = graph.get_state(config)
    assert state.config["configurable"]["thread_id"] == thread
    assert state.values["log"] == ["hi", "think:hi", "reply#1"]
    assert [t.config["configurable"]["thread_id"] for t in PraisonDBSaver(db).list(config)] == [
        thread
    ] * 4
