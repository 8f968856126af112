"""Two writers racing on one thread never silently fork it (LangGraph issue #8796).

The schedule of #8796 (``durability="sync"``), made deterministic with a gate instead of
SIGSTOP: writer A
starts a turn and is held inside its node (a model call in real life); writer B resumes
the thread (``invoke(None, config)``), runs the same pending task and finishes; then A is
let go. A stock saver takes A's late checkpoint as a second child of the same parent,
a silent fork whose newest branch wins; praisondb refuses A's write with ``Conflict``.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from typing import Any

import pytest
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.base.id import uuid6
from langgraph.checkpoint.memory import InMemorySaver

from praisondb import Conflict, PraisonDB
from praisondb.aio import AsyncPraisonDB
from praisondb.integrations.langgraph import FENCE, PraisonDBSaver
from tests.backends import TestBackend
from tests.integrations.langgraph.graphs import Gate, gated_graph


def race(graph_a: Any, graph_b: Any, gate: Gate, config: dict[str, Any]) -> BaseException | None:
    """Run the #8796 schedule; A's error (None if A's write was accepted)."""
    outcome: dict[str, BaseException] = {}

    def writer_a() -> None:
        try:
            graph_a.invoke({"log": ["hi"]}, config, durability="sync")
        except BaseException as exc:
            outcome["a"] = exc

    a = threading.Thread(target=writer_a)
    a.start()
    assert gate.entered.wait(60), "writer A never reached its node"
    graph_b.invoke(
        None, config, durability="sync"
    )  # B resumes the pending task and finishes the turn
    gate.release.set()
    a.join(60)
    assert not a.is_alive()
    return outcome.get("a")


def forks(graph: Any, config: dict[str, Any]) -> list[str]:
    """Checkpoints of the thread that have more than one child."""
    children = Counter(
        s.parent_config["configurable"]["checkpoint_id"]
        for s in graph.get_state_history(config)
        if s.parent_config is not None
    )
    return [parent for parent, count in children.items() if count > 1]


def test_a_stock_saver_forks_silently_under_this_schedule(thread_id: str) -> None:
    """The control: the schedule really forks a thread when nothing fences it."""
    gate = Gate()
    graph = gated_graph(InMemorySaver(), gate)
    config = {"configurable": {"thread_id": thread_id}}
    assert race(graph, graph, gate, config) is None
    assert len(forks(graph, config)) == 1


def _assert_refused(error: BaseException | None, graph: Any, config: dict[str, Any]) -> None:
    assert isinstance(error, Conflict), error
    assert "moved on" in str(error) and "Re-run from the latest checkpoint" in str(error)
    assert forks(graph, config) == []
    state = graph.get_state(config)
    assert state.values == {"log": ["hi", "work#1"], "turns": 1}  # B's turn, once
    assert state.next == ()


def test_the_late_writer_gets_conflict_one_saver(db: PraisonDB, thread_id: str) -> None:
    gate = Gate()
    graph = gated_graph(PraisonDBSaver(db), gate)
    config = {"configurable": {"thread_id": thread_id}}
    _assert_refused(race(graph, graph, gate, config), graph, config)


@pytest.mark.usefixtures("db")  # the schema, migrated before the savers open
def test_the_late_writer_gets_conflict_two_processes(
    multi_process: TestBackend, backend_url: str, thread_id: str
) -> None:
    """Each writer with its own database and saver, as two processes have."""
    gate = Gate()
    with PraisonDB(backend_url) as one, PraisonDB(backend_url) as two:
        graph_a = gated_graph(PraisonDBSaver(one), gate)
        graph_b = gated_graph(PraisonDBSaver(two), gate)
        config = {"configurable": {"thread_id": thread_id}}
        _assert_refused(race(graph_a, graph_b, gate, config), graph_b, config)


@pytest.mark.usefixtures("db")  # the schema, migrated before the savers open
def test_the_late_writer_gets_conflict_async(backend_url: str, thread_id: str) -> None:
    async def main() -> None:
        gate = Gate()
        async with AsyncPraisonDB(backend_url) as adb:
            graph = gated_graph(PraisonDBSaver(adb), gate)
            config = {"configurable": {"thread_id": thread_id}}
            a = asyncio.create_task(graph.ainvoke({"log": ["hi"]}, config, durability="sync"))
            assert await asyncio.to_thread(gate.entered.wait, 60)
            await graph.ainvoke(None, config, durability="sync")
            gate.release.set()
            with pytest.raises(Conflict, match="moved on"):
                await a
            history = [s async for s in graph.aget_state_history(config)]
            children = Counter(
                s.parent_config["configurable"]["checkpoint_id"] for s in history if s.parent_config
            )
            assert max(children.values()) == 1
            assert (await graph.aget_state(config)).values == {"log": ["hi", "work#1"], "turns": 1}

    asyncio.run(main())


def test_two_new_threads_racing_do_not_both_start_it(db: PraisonDB, thread_id: str) -> None:
    """Two runs starting the same new thread: the second first checkpoint is refused."""
    saver = PraisonDBSaver(db)
    config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    first, second = empty_checkpoint(), empty_checkpoint()
    meta: Any = {"source": "input", "step": -1, "parents": {}}
    saver.put(config, first, meta, {})
    with pytest.raises(Conflict, match="an empty thread"):
        saver.put(config, second, meta, {})
    assert [t.checkpoint["id"] for t in saver.list(config)] == [first["id"]]


def test_time_travel_still_forks_on_purpose(db: PraisonDB, thread_id: str) -> None:
    """A run from a checkpoint named by id is a deliberate fork, never refused."""
    gate = Gate()
    gate.release.set()
    graph = gated_graph(PraisonDBSaver(db), gate)
    config = {"configurable": {"thread_id": thread_id}}
    graph.invoke({"log": ["hi"]}, config)
    graph.invoke({"log": ["more"]}, config)
    first_turn = next(
        s for s in graph.get_state_history(config) if s.values["log"] == ["hi", "work#1"]
    )
    graph.invoke({"log": ["instead"]}, first_turn.config)
    assert graph.get_state(config).values["log"] == ["hi", "work#1", "instead", "work#3"]
    assert len(forks(graph, config)) == 1


def test_a_writer_that_loaded_the_latest_is_fenced(db: PraisonDB, thread_id: str) -> None:
    """The fence rides on the config ``get_tuple`` returns for the latest checkpoint."""
    gate = Gate()
    gate.release.set()
    saver = PraisonDBSaver(db)
    graph = gated_graph(PraisonDBSaver(db), gate)
    config = {"configurable": {"thread_id": thread_id}}
    graph.invoke({"log": ["hi"]}, config)
    loaded = saver.get_tuple(config)  # A loads the latest...
    assert loaded is not None and loaded.config["configurable"][FENCE]
    graph.invoke({"log": ["b"]}, config)  # ...another writer moves the thread on...
    step: Any = {"source": "loop", "step": 9, "parents": {}}
    with pytest.raises(Conflict, match="moved on"):  # ...and A's write is refused
        saver.put(loaded.config, {**loaded.checkpoint, "id": str(uuid6(clock_seq=9))}, step, {})
    named = saver.get_tuple(
        {
            "configurable": {
                **config["configurable"],
                "checkpoint_id": loaded.config["configurable"]["checkpoint_id"],
            }
        }
    )
    assert named is not None and named.config["configurable"][FENCE] is None
    saver.put(named.config, {**named.checkpoint, "id": str(uuid6(clock_seq=9))}, step, {})
    assert len(forks(graph, config)) == 1  # a named checkpoint forks on purpose
