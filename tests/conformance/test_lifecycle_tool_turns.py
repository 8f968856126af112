"""PraisonAI's tool-turn hooks: what an agent stored comes back as a transcript the chat
API accepts, tool calls and results intact, on every backend and face."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from praisondb import PraisonDB


def call(
    call_id: str, name: str = "weather", arguments: str = '{"city": "Oslo"}'
) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def transcript(db: PraisonDB, session_id: str) -> list[dict[str, Any]]:
    """What PraisonAI's ``_restore_db_history`` builds from ``on_agent_start``."""
    out = []
    for message in db.on_agent_start("guide", session_id):
        entry: dict[str, Any] = {"role": message.role, "content": message.content}
        if message.tool_calls:
            entry["tool_calls"] = message.tool_calls
        if message.tool_call_id:
            entry["tool_call_id"] = message.tool_call_id
        out.append(entry)
    return out


def test_tool_calls_and_results_come_back_intact(db: PraisonDB, uid: str) -> None:
    db.on_user_message(uid, "Weather in Oslo and Rome?")
    calls = [call("c1"), call("c2", arguments='{"city": "Rome"}')]
    db.on_assistant_message(uid, "Checking both.", tool_calls=calls)
    db.on_tool_message(uid, "sunny in Oslo", tool_call_id="c1")
    db.on_tool_message(uid, "rain in Rome", tool_call_id="c2")
    db.on_agent_message(uid, "Oslo is sunny, Rome is rainy.")
    assert transcript(db, uid) == [
        {"role": "user", "content": "Weather in Oslo and Rome?"},
        {"role": "assistant", "content": "Checking both.", "tool_calls": calls},
        {"role": "tool", "content": "sunny in Oslo", "tool_call_id": "c1"},
        {"role": "tool", "content": "rain in Rome", "tool_call_id": "c2"},
        {"role": "assistant", "content": "Oslo is sunny, Rome is rainy."},
    ]
    stored = db.messages.list(uid)
    assert stored[1].metadata == {"tool_calls": calls}
    assert stored[2].metadata == {"tool_call_id": "c1"}


def test_resume_leaves_out_what_the_chat_api_would_refuse(db: PraisonDB, uid: str) -> None:
    db.on_user_message(uid, "q1")
    db.on_tool_call(uid, "calc", {"x": 1}, 2)  # a log record: answers no call
    db.on_tool_message(uid, "orphan", tool_call_id="nobody-asked")
    db.on_assistant_message(uid, "", tool_calls=[call("lost")])  # the process died here
    db.on_user_message(uid, "q2")
    db.on_assistant_message(uid, "Let me look.", tool_calls=[call("c3"), call("c4")])
    db.on_tool_message(uid, "sunny", tool_call_id="c3")  # c4 never answered
    db.on_agent_message(uid, "Sunny.")
    assert transcript(db, uid) == [
        {"role": "user", "content": "q1"},
        {"role": "user", "content": "q2"},
        {"role": "assistant", "content": "Let me look.", "tool_calls": [call("c3")]},
        {"role": "tool", "content": "sunny", "tool_call_id": "c3"},
        {"role": "assistant", "content": "Sunny."},
    ]
    assert len(db.messages.list(uid)) == 8  # nothing is deleted: only the replay is trimmed


@dataclass
class ToolCallRecord:
    """The shape of PraisonAI's ``DbToolCall`` (an adapter may be handed these)."""

    tool_name: str
    args: dict[str, Any]
    call_id: str


def test_tool_call_objects_are_kept_in_openai_format(db: PraisonDB, uid: str) -> None:
    db.on_user_message(uid, "Weather?")
    db.on_assistant_message(uid, "", tool_calls=[ToolCallRecord("weather", {"city": "Oslo"}, "c9")])
    db.on_tool_message(uid, "sunny", tool_call_id="c9")
    (asked,) = [m for m in transcript(db, uid) if "tool_calls" in m]
    assert asked["tool_calls"] == [call("c9", arguments='{"city":"Oslo"}')]


def test_the_run_input_stands_in_for_an_unreported_user_message(db: PraisonDB, uid: str) -> None:
    """PraisonAI 1.7.17's ``achat`` reports the run but never calls ``on_user_message``."""
    db.on_run_start(uid, f"{uid}-r1", input_content="My name is Ada.")
    db.on_agent_message(uid, "Noted.")
    db.on_run_end(uid, f"{uid}-r1", output_content="Noted.")
    db.on_run_start(uid, f"{uid}-r2", input_content="Who am I?")  # reported: stored once
    db.on_user_message(uid, "Who am I?")
    db.on_agent_message(uid, "Ada.")
    db.on_run_end(uid, f"{uid}-r2", output_content="Ada.")
    stored = db.messages.list(uid)
    assert [(m.role, m.content, m.run_id) for m in stored] == [
        ("user", "My name is Ada.", f"{uid}-r1"),
        ("assistant", "Noted.", f"{uid}-r1"),
        ("user", "Who am I?", f"{uid}-r2"),
        ("assistant", "Ada.", f"{uid}-r2"),
    ]
