"""``AsyncSession.run_agent`` awaits an ``async def`` agent on the loop, handing it the
AsyncSession, and records the exchange as the sync face does (the sync path is proven on
every backend and face in tests/conformance/test_multiagent.py)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from praisondb import ValidationError
from praisondb.aio import AsyncPraisonDB, AsyncSession


def test_an_async_agent_runs_on_the_loop_with_the_async_session(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    async def writer(session: Any, prompt: str) -> str:
        seen["session"] = session
        seen["thread"] = threading.get_ident()
        await session.shared_state.set("draft", prompt.upper())
        return f"draft: {prompt}"

    async def broken(session: Any, prompt: str) -> str:
        raise RuntimeError("no model")

    async def wrong(session: Any, prompt: str) -> Any:
        return 42

    async def main() -> None:
        async with AsyncPraisonDB(f"sqlite:///{tmp_path / 'a.db'}") as db:
            s = await db.session("s-1")
            loop_thread = threading.get_ident()
            assert await s.run_agent("writer", "otters", writer) == "draft: otters"
            assert isinstance(seen["session"], AsyncSession) and seen["thread"] == loop_thread
            assert await s.shared_state.get("draft") == "OTTERS"
            with pytest.raises(RuntimeError, match="no model"):
                await s.run_agent("critic", "review", broken)
            with pytest.raises(ValidationError, match="must return the reply"):
                await s.run_agent("critic", "review", wrong)
            with pytest.raises(ValidationError):
                await s.run_agent("", "review", writer)
            sync_reply = await s.run_agent("echo", "hi", lambda session, prompt: prompt)
            assert sync_reply == "hi"
            history = await s.history(agent="writer")
            assert [(m.role, m.content) for m in history] == [
                ("user", "otters"),
                ("assistant", "draft: otters"),
            ]
            runs = await db.runs.list("s-1")
            assert [(r.metadata["agent"], r.status) for r in runs] == [
                ("writer", "completed"),
                ("critic", "error"),
                ("critic", "error"),
                ("echo", "completed"),
            ]
            assert runs[1].error == "RuntimeError: no model"

    asyncio.run(main())
