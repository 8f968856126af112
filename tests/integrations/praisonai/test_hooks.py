"""What the real praisonaiagents 1.7.17 sees in a ``PraisonDB``: every hook it looks for,
the awaited ones off its event loop, and what its non-streaming path reports."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from praisonaiagents.db.protocol import DbAdapter, ToolTurnDbAdapterProtocol

from praisondb import PraisonDB
from tests.fakes.openai_server import FakeOpenAIServer, call, text
from tests.integrations.praisonai.agent_kit import agent, turn


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Any:
    with PraisonDB(f"sqlite:///{tmp_path / 'agent.db'}") as db:
        yield db


def test_the_agent_finds_every_hook(sqlite_db: PraisonDB, agent_env: dict[str, str]) -> None:
    assert isinstance(sqlite_db, DbAdapter) and isinstance(sqlite_db, ToolTurnDbAdapterProtocol)
    a = agent(sqlite_db, "s-hooks")
    for awaited in ("on_agent_start", "on_run_start", "on_run_end"):
        assert a._async_db_hook(awaited) is not None, awaited  # PraisonAI awaits aon_<name>


def test_awaited_hooks_run_off_the_event_loop(sqlite_db: PraisonDB, uid: str) -> None:
    threads: list[int] = []
    ensure = sqlite_db._ensure_session

    def recording(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.get_ident())
        return ensure(*args, **kwargs)

    sqlite_db._ensure_session = recording  # type: ignore[method-assign]

    async def main() -> int:
        assert await sqlite_db.aon_agent_start("guide", uid) == []
        await sqlite_db.aon_run_start(uid, "r1", input_content="hi")
        await sqlite_db.aon_run_end(uid, "r1", output_content="hello")
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert threads and loop_thread not in threads
    (run,) = sqlite_db.get_runs(uid)
    assert run.status == "completed" and run.metadata["output"] == "hello"


def test_a_non_streaming_tool_turn_is_reported_as_text(
    sqlite_db: PraisonDB, uid: str, openai_server: FakeOpenAIServer, agent_env: dict[str, str]
) -> None:
    """PraisonAI 1.7.17 reports tool turns only on its streaming path: ``start()`` and
    ``astart()`` run the tool inside the model call and report the user's message and
    the final answer, so that is what a later turn gets back."""
    openai_server.script(call("weather", "call_1", city="Oslo"), text("Sunny."))
    assert turn(sqlite_db, uid, "start", "Weather in Oslo?") == "Sunny."
    assert [m.role for m in sqlite_db.messages.list(uid)] == ["user", "assistant"]
    openai_server.script(text("Oslo."))
    seen = len(openai_server.requests)
    turn(sqlite_db, uid, "start", "Which city?")
    assert [m["role"] for m in openai_server.requests[seen]["messages"][1:]] == [
        "user",
        "assistant",
        "user",
    ]
