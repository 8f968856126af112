"""The real PraisonAI ``Agent`` keeps its conversation in praisondb, on every backend.

Each turn is a new ``Agent`` in a new process (agent_kit.py; the memory backend, private to
one process, runs them in this one): teach a fact with ``start``, ask for the weather with a streamed
tool turn, then ``astart`` recalls both. The fake model checks what each resumed request
carried: the fact, and the tool call with its result, exactly as the model produced them.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from typing import Any

from praisondb import PraisonDB
from tests.backends import TestBackend
from tests.fakes.openai_server import FakeOpenAIServer, call, text
from tests.integrations.praisonai.agent_kit import turn, turn_in_process

TAUGHT = [
    {"role": "user", "content": "My name is Ada."},
    {"role": "assistant", "content": "Noted, Ada."},
]
TOOL_TURN = [
    {"role": "user", "content": "Weather in Oslo?"},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "id": "call_oslo",
                "type": "function",
                "function": {"name": "weather", "arguments": '{"city": "Oslo"}'},
            }
        ],
    },
    {"role": "tool", "content": "sunny in Oslo", "tool_call_id": "call_oslo"},
    {"role": "assistant", "content": "It is sunny in Oslo."},
]


def conversation(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The messages of a model request after the system prompt."""
    messages: list[dict[str, Any]] = request["messages"]
    assert messages[0]["role"] == "system"
    return messages[1:]


class Turns:
    """Runs turns in new processes, or in this one for a single-process backend."""

    def __init__(
        self,
        backend: TestBackend,
        url: str,
        db: PraisonDB,
        env: dict[str, str],
        pool: ProcessPoolExecutor,
    ) -> None:
        self.url, self.db, self.env, self.pool = url, db, env, pool
        self.in_process = not backend.multi_process

    def __call__(self, session_id: str, mode: str, prompt: str) -> Any:
        if self.in_process:
            return turn(self.db, session_id, mode, prompt)
        args = (self.url, session_id, mode, prompt, self.env)
        return self.pool.submit(turn_in_process, *args).result(timeout=120)


def test_a_fact_and_a_tool_turn_survive_new_processes(
    backend: TestBackend,
    backend_url: str,
    db: PraisonDB,
    uid: str,
    openai_server: FakeOpenAIServer,
    agent_env: dict[str, str],
    agent_processes: ProcessPoolExecutor,
) -> None:
    run = Turns(backend, backend_url, db, agent_env, agent_processes)
    server = openai_server

    server.script(text("Noted, Ada."))
    assert run(uid, "start", "My name is Ada.") == "Noted, Ada."
    assert conversation(server.requests[-1]) == TAUGHT[:1]

    seen = len(server.requests)
    server.script(call("weather", "call_oslo", city="Oslo"), text("It is sunny in Oslo."))
    assert run(uid, "stream", "Weather in Oslo?") == "It is sunny in Oslo."
    assert conversation(server.requests[seen]) == [*TAUGHT, TOOL_TURN[0]]  # resumed

    seen = len(server.requests)
    server.script(text("You are Ada; you asked about Oslo."))
    assert run(uid, "astart", "Who am I?") == "You are Ada; you asked about Oslo."
    (recall,) = server.requests[seen:]
    assert conversation(recall) == [*TAUGHT, *TOOL_TURN, {"role": "user", "content": "Who am I?"}]
    assert server.errors == [] and server.unused() == []

    # what the agent wrote is an ordinary praisondb session
    messages = db.messages.list(uid)
    assert [m.role for m in messages] == ["user", "assistant"] * 2 + ["tool"] + [
        "assistant",
        "user",
        "assistant",
    ]
    assert messages[3].metadata["tool_calls"][0]["id"] == "call_oslo"
    assert messages[4].metadata["tool_call_id"] == "call_oslo"
    runs = db.get_runs(uid)  # start and astart report runs (PraisonAI's stream does not)
    assert [(r.status, r.metadata["input"]) for r in runs] == [
        ("completed", "My name is Ada."),
        ("completed", "Who am I?"),
    ]
    assert messages[-1].run_id == runs[-1].id and messages[-2].run_id == runs[-1].id
    info = db.sessions.get(uid)
    assert info.agent == "guide" and info.user_id == "u-ada"
