"""Whole-thread operations keep a thread loadable and its head right."""

from __future__ import annotations

from praisondb import PraisonDB
from praisondb.integrations.langgraph import PraisonDBSaver
from tests.integrations.langgraph.graphs import chat_graph


def test_prune_keep_latest_leaves_a_thread_that_runs_on(db: PraisonDB, thread_id: str) -> None:
    saver = PraisonDBSaver(db)
    graph = chat_graph(saver)
    config = {"configurable": {"thread_id": thread_id}}
    graph.invoke({"log": ["one"]}, config)
    graph.invoke({"log": ["two"]}, config)
    saver.prune([thread_id])
    history = list(graph.get_state_history(config))
    assert len(history) == 1 and history[0].parent_config is None
    latest = saver.get_tuple(config)
    assert latest is not None and latest.parent_config is None
    third = graph.invoke({"log": ["three"]}, config)
    assert third["log"][-3:] == ["three", "think:three", "reply#3"]
    assert len(list(graph.get_state_history(config))) == 5


def test_deleting_the_head_s_run_moves_the_head_back(db: PraisonDB, thread_id: str) -> None:
    saver = PraisonDBSaver(db)
    graph = chat_graph(saver)
    config = {"configurable": {"thread_id": thread_id}}
    graph.invoke({"log": ["one"]}, {**config, "metadata": {"run_id": "run-one"}})
    graph.invoke({"log": ["two"]}, {**config, "metadata": {"run_id": "run-two"}})
    assert {s.metadata.get("run_id") for s in graph.get_state_history(config)} == {
        "run-one",
        "run-two",
    }
    saver.delete_for_runs(["run-two"])
    state = graph.get_state(config)
    assert state.values == {"log": ["one", "think:one", "reply#1"], "turns": 1}
    graph.invoke({"log": ["again"]}, config)  # the moved head is a valid parent
    assert graph.get_state(config).values["turns"] == 2


def test_delete_thread_deletes_the_session(db: PraisonDB, thread_id: str) -> None:
    saver = PraisonDBSaver(db)
    chat_graph(saver).invoke({"log": ["one"]}, {"configurable": {"thread_id": thread_id}})
    assert db.sessions.exists(thread_id)
    saver.delete_thread(thread_id)
    assert not db.sessions.exists(thread_id)
    assert db.state.list(f"session:{thread_id}") == []


def test_a_copied_thread_resumes_on_its_own(db: PraisonDB, thread_id: str) -> None:
    saver = PraisonDBSaver(db)
    graph = chat_graph(saver)
    graph.invoke({"log": ["one"]}, {"configurable": {"thread_id": thread_id}})
    saver.copy_thread(thread_id, thread_id + "-copy")
    copy = {"configurable": {"thread_id": thread_id + "-copy"}}
    assert graph.invoke({"log": ["two"]}, copy)["turns"] == 2
    assert graph.get_state({"configurable": {"thread_id": thread_id}}).values["turns"] == 1
