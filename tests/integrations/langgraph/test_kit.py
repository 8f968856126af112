"""LangGraph's official checkpointer conformance kit against PraisonDBSaver.

``langgraph-checkpoint-conformance`` (the package LangGraph publishes for third-party
savers) runs every base and extended capability: put, put_writes, get_tuple, list,
delete_thread, delete_for_runs, copy_thread, prune. Its clauses call the async methods;
for the sync face each call is routed to the sync method in a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES
from langgraph.checkpoint.conformance.report import CapabilityReport

from praisondb import PraisonDB
from praisondb.aio import AsyncPraisonDB
from praisondb.integrations.langgraph import PraisonDBSaver


class SyncFace(BaseCheckpointSaver[str]):
    """The kit's async calls, each answered by the saver's sync method in a thread."""

    def __init__(self, saver: PraisonDBSaver) -> None:
        super().__init__(serde=saver.serde)
        self.saver = saver

    async def aget_tuple(self, config: Any) -> CheckpointTuple | None:
        return await asyncio.to_thread(self.saver.get_tuple, config)

    async def alist(
        self,
        config: Any,
        *,
        filter: dict[str, Any] | None = None,
        before: Any = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        found = await asyncio.to_thread(
            lambda: list(self.saver.list(config, filter=filter, before=before, limit=limit))
        )
        for item in found:
            yield item

    async def aput(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        return await asyncio.to_thread(self.saver.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self, config: Any, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        await asyncio.to_thread(self.saver.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await asyncio.to_thread(self.saver.delete_thread, thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await asyncio.to_thread(self.saver.delete_for_runs, run_ids)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await asyncio.to_thread(self.saver.copy_thread, source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await asyncio.to_thread(self.saver.prune, thread_ids, strategy=strategy)


async def run_kit(url: str, side: str) -> CapabilityReport:
    @checkpointer_test(name=f"PraisonDBSaver-{side}")
    async def factory() -> AsyncIterator[BaseCheckpointSaver[str]]:
        if side == "async":
            async with AsyncPraisonDB(url, auto_migrate=True) as adb:
                yield PraisonDBSaver(adb)
        else:
            with PraisonDB(url, auto_migrate=True) as db:
                yield SyncFace(PraisonDBSaver(db))

    return await validate(factory)


@pytest.mark.parametrize("side", ["sync", "async"])
def test_official_kit_passes_every_capability(backend_url: str, side: str) -> None:
    report = asyncio.run(run_kit(backend_url, side))
    results = report.results
    assert {name for name, result in results.items() if result.detected} == {
        capability.value for capability in ALL_CAPABILITIES
    }
    failures = {name: result.failures for name, result in results.items() if not result.passed}
    assert failures == {}
    assert report.passed_all_base() and report.conformance_level() == "FULL"
    assert sum(result.tests_passed for result in results.values()) >= 80
