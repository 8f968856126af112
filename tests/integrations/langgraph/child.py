"""One step of a LangGraph conversation in a process of its own (tests/…/test_graph.py).

``python -m tests.integrations.langgraph.child URL THREAD ACTIONS FACE`` prints the state
after each action as a JSON line. Actions: ``start`` (runs to the interrupt), ``resume`` (answers it), ``travel``
(edits the checkpoint that asked, a branch off the past, and answers it differently).
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from langgraph.types import Command

from praisondb import PraisonDB
from praisondb.aio import AsyncPraisonDB
from praisondb.integrations.langgraph import PraisonDBSaver
from tests.integrations.langgraph.graphs import review_graph


def step(graph: Any, config: dict[str, Any], action: str) -> Any:
    if action == "start":
        return graph.invoke({"log": ["spec"]}, config)
    if action == "resume":
        return graph.invoke(Command(resume="yes"), config)
    asked = next(s for s in graph.get_state_history(config) if s.next == ("approve",))
    fork = graph.update_state(asked.config, {"log": ["edited"]})  # a branch off the past
    graph.invoke(None, fork)  # asks again
    return graph.invoke(Command(resume="no"), config)


async def astep(graph: Any, config: dict[str, Any], action: str) -> Any:
    if action == "start":
        return await graph.ainvoke({"log": ["spec"]}, config)
    if action == "resume":
        return await graph.ainvoke(Command(resume="yes"), config)
    asked = [s async for s in graph.aget_state_history(config) if s.next == ("approve",)]
    fork = await graph.aupdate_state(asked[0].config, {"log": ["edited"]})
    await graph.ainvoke(None, fork)
    return await graph.ainvoke(Command(resume="no"), config)


def report(graph: Any, config: dict[str, Any]) -> dict[str, Any]:
    state = graph.get_state(config)
    history = list(graph.get_state_history(config))
    return {
        "values": state.values,
        "next": list(state.next),
        "interrupts": [i.value for t in state.tasks for i in t.interrupts],
        "checkpoints": len(history),
    }


def main(url: str, thread: str, actions: str, face: str) -> None:
    """Run each comma-separated action; print the state after each, one JSON line."""
    config = {"configurable": {"thread_id": thread}}
    for action in actions.split(","):
        if face == "async":

            async def run(action: str) -> None:
                async with AsyncPraisonDB(url, auto_migrate=True) as adb:
                    await astep(review_graph(PraisonDBSaver(adb)), config, action)

            asyncio.run(run(action))
        else:
            with PraisonDB(url, auto_migrate=True) as db:
                step(review_graph(PraisonDBSaver(db)), config, action)
        with PraisonDB(url) as db:
            print(json.dumps(report(review_graph(PraisonDBSaver(db)), config)))


if __name__ == "__main__":
    main(*sys.argv[1:5])
