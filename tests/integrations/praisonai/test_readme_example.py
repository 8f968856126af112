"""The README's PraisonAI example runs as a user runs it, in a fresh interpreter, against
the real praisonaiagents and a local OpenAI-compatible server, and does what it says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from praisondb import PraisonDB
from tests.fakes.openai_server import FakeOpenAIServer, call, text
from tests.integrations.praisonai.conftest import ROOT

README = (ROOT / "README.md").read_text()
(EXAMPLE,) = [
    block
    for block in re.findall(r"```python\n(.*?)```", README, re.S)
    if "from praisonaiagents import" in block
]


def test_the_readme_example_resumes_a_tool_using_conversation(
    openai_server: FakeOpenAIServer, agent_env: dict[str, str], tmp_path: Path
) -> None:
    openai_server.script(
        text("Hello Ada."),
        call("weather", "call_1", city="Oslo"),
        text("It is sunny in Oslo."),
        text("Your name is Ada."),
    )
    seen = len(openai_server.requests)
    script = tmp_path / "example.py"
    script.write_text(EXAMPLE)
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=agent_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert openai_server.errors == [] and openai_server.unused() == []
    last = openai_server.requests[-1]["messages"][1:]
    assert len(openai_server.requests) - seen == 4
    assert [m["role"] for m in last] == [
        "user",
        "assistant",
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
    ]
    assert last[3]["tool_calls"][0]["id"] == "call_1" and last[4]["tool_call_id"] == "call_1"

    printed = done.stdout.splitlines()
    assert printed[0] == "Your name is Ada."
    roles = "['user', 'assistant', 'user', 'assistant', 'tool', 'assistant', 'user', 'assistant']"
    assert printed[1] == roles and f"# {roles}" in EXAMPLE  # the comment tells the truth
    assert printed[2] == "[('completed', 'My name is Ada.'), ('completed', 'What is my name?')]"
    with PraisonDB(f"sqlite:///{tmp_path / 'agent.db'}") as db:
        assert db.sessions.get("u-42:support").agent == "support"
