"""Small real LangGraph graphs the tests drive (no model: each node is plain Python)."""

from __future__ import annotations

import operator
import threading
from typing import Annotated, Any

from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict


class Chat(TypedDict):
    """A conversation: ``log`` grows by the reducer, ``turns`` counts node runs."""

    log: Annotated[list[str], operator.add]
    turns: int


def chat_graph(checkpointer: Any) -> Any:
    """START -> think -> reply -> END: two steps per turn, both appending to ``log``."""

    def think(state: Chat) -> dict[str, Any]:
        return {"log": [f"think:{state['log'][-1]}"], "turns": state.get("turns", 0) + 1}

    def reply(state: Chat) -> dict[str, Any]:
        return {"log": [f"reply#{state['turns']}"]}

    builder = StateGraph(Chat)
    builder.add_node("think", think)
    builder.add_node("reply", reply)
    builder.add_edge(START, "think")
    builder.add_edge("think", "reply")
    builder.add_edge("reply", END)
    return builder.compile(checkpointer=checkpointer)


class Gate:
    """Holds the first call of a node until released: the #8796 schedule without sleeps.

    Writer A enters the node and waits; the test runs writer B to the end, then lets A
    go. Later calls pass straight through."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self._first = threading.Lock()
        self._used = False

    def wait_if_first(self, timeout: float = 60) -> None:
        with self._first:
            first, self._used = not self._used, True
        if first:
            self.entered.set()
            assert self.release.wait(timeout), "the test never released the gate"


def gated_graph(checkpointer: Any, gate: Gate) -> Any:
    """START -> work -> END, where ``work`` (a model call in real life) is gated."""

    def work(state: Chat) -> dict[str, Any]:
        gate.wait_if_first()
        return {"log": [f"work#{len(state['log'])}"], "turns": state.get("turns", 0) + 1}

    builder = StateGraph(Chat)
    builder.add_node("work", work)
    builder.add_edge(START, "work")
    builder.add_edge("work", END)
    return builder.compile(checkpointer=checkpointer)


class Review(TypedDict):
    """A draft that a human approves: ``interrupt`` stops the run until resumed."""

    log: Annotated[list[str], operator.add]
    verdict: str


def review_graph(checkpointer: Any) -> Any:
    """START -> draft -> approve (asks, via interrupt) -> END."""
    from langgraph.types import interrupt

    def draft(state: Review) -> dict[str, Any]:
        return {"log": [f"draft of {state['log'][-1]}"]}

    def approve(state: Review) -> dict[str, Any]:
        answer = interrupt({"question": f"ship the {state['log'][-1]}?"})
        return {"verdict": answer, "log": [f"verdict:{answer}"]}

    builder = StateGraph(Review)
    builder.add_node("draft", draft)
    builder.add_node("approve", approve)
    builder.add_edge(START, "draft")
    builder.add_edge("draft", "approve")
    builder.add_edge("approve", END)
    return builder.compile(checkpointer=checkpointer)
