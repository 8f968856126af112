"""The SDK's OpenAIResponsesCompactionSession over PraisonDBSession: a forced compaction
goes through ``_atomic_replace_items``, so the history becomes the compacted items in one
step, and the next Runner turn sends exactly those to the model."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from agents import Agent, Runner
from agents.memory import OpenAIResponsesCompactionSession

from praisondb.integrations.openai_agents import PraisonDBSession
from tests.integrations.openai_agents.conftest import Opener
from tests.integrations.openai_agents.scripted import ScriptedModel, text

COMPACTED = {"type": "compaction", "id": "cmp_1", "encrypted_content": "summary-of-12-items"}


class CompactingResponses:
    """The one endpoint the SDK's compaction session calls: ``responses.compact``."""

    def __init__(self) -> None:
        self.inputs: list[list[Any]] = []

    async def compact(self, **request: Any) -> Any:
        self.inputs.append(request["input"])
        return SimpleNamespace(output=[dict(COMPACTED)], usage=None)


def test_forced_compaction_replaces_the_history_atomically(run_with: Any, uid: str) -> None:
    async def main(opener: Opener) -> None:
        replaced: list[int] = []
        session = opener.session(uid)
        original = PraisonDBSession._atomic_replace_items

        async def spy(self: PraisonDBSession, items: list[Any]) -> bool:
            replaced.append(len(items))
            return await original(self, items)

        responses = CompactingResponses()
        client = SimpleNamespace(responses=responses)
        compacting = OpenAIResponsesCompactionSession(uid, session, client=client)  # type: ignore[arg-type]
        await session.add_items([{"role": "user", "content": "start"}])
        for n in range(6):
            await session.add_items(
                [
                    {"type": "function_call", "call_id": f"c{n}", "name": "f", "arguments": "{}"},
                    {"type": "function_call_output", "call_id": f"c{n}", "output": str(n)},
                ]
            )
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(PraisonDBSession, "_atomic_replace_items", spy)
            await compacting.run_compaction({"force": True, "compaction_mode": "input"})
        assert replaced == [1]
        assert len(responses.inputs[0]) == 13
        assert await session.get_items() == [COMPACTED]
        assert await opener.inspect(lambda db: db.messages.count(uid)) == 1

        model = ScriptedModel(text("continuing"))
        agent = Agent(name="compacted", model=model)
        await Runner.run(agent, "go on", session=opener.session(uid))
        assert model.inputs[0][0] == COMPACTED
        assert len(model.inputs[0]) == 2

    run_with(main)
