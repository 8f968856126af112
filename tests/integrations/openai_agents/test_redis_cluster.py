"""On a Redis Cluster the SDK's own RedisSession can read and pop but refuses to write
(its writes are MULTI transactions over three keys); PraisonDBSession writes there, by
URL, like on any other backend."""

from __future__ import annotations

import asyncio

import pytest
from agents import Agent, Runner

from praisondb.integrations.openai_agents import PraisonDBSession
from tests.conftest import require_module
from tests.integrations.openai_agents.scripted import ScriptedModel, text

redis_cluster = require_module("redis.asyncio.cluster")
from agents.extensions.memory import RedisSession  # noqa: E402


@pytest.mark.backends("redis_cluster")
def test_writes_work_on_a_redis_cluster_where_the_sdks_store_refuses(
    backend_url: str, uid: str
) -> None:
    async def main() -> None:
        address = backend_url.split("?", 1)[0]
        client = redis_cluster.RedisCluster.from_url(address)
        theirs = RedisSession(uid, redis_client=client, key_prefix=f"sdk:{uid}")
        try:
            with pytest.raises(TypeError, match="RedisCluster"):
                await theirs.add_items([{"role": "user", "content": "hi"}])
        finally:
            await client.aclose()

        async with PraisonDBSession(uid, backend_url) as ours:
            agent = Agent(name="clustered", model=ScriptedModel(text("one"), text("two")))
            await Runner.run(agent, "first", session=ours)
            await Runner.run(agent, "second", session=ours)
            assert len(await ours.get_items()) == 4
            assert await ours._atomic_replace_items([{"role": "user", "content": "kept"}])
            assert await ours.pop_item() == {"role": "user", "content": "kept"}
            await ours.add_items([{"role": "user", "content": "again"}])
            await ours.clear_session()
            assert await ours.get_items() == []

    asyncio.run(main())
