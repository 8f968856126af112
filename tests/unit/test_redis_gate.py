"""The call gate of the async Redis store (stores/redis/aio.py: CallGate): at
most ``size`` calls at once, the rest wait their turn (up to a timeout), a cancelled
waiter takes no place, and a call already inside passes straight through."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from praisondb.stores.redis.aio import NO_CONNECTION, CallGate
from tests.conftest import require_module

redis = require_module("redis")
concurrency = require_module("sqlalchemy.util.concurrency")


def _blocking(gate: CallGate, release: asyncio.Event, log: list[str], name: str) -> Any:
    """A greenlet call holding a place until ``release`` is set."""

    def body() -> str:
        log.append(f"{name} in")
        concurrency.await_only(release.wait())
        log.append(f"{name} out")
        return name

    return concurrency.greenlet_spawn(gate.guard(body))


async def _until(condition: Callable[[], bool], timeout: float = 5) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.001)  # polling interval


def test_calls_beyond_the_size_wait_their_turn_in_order() -> None:
    async def scenario() -> list[str]:
        gate, release, log = CallGate(2, timeout=5), asyncio.Event(), []
        calls = [asyncio.ensure_future(_blocking(gate, release, log, str(i))) for i in range(4)]
        await _until(lambda: len(log) == 2)
        assert log == ["0 in", "1 in"]  # two inside, two waiting
        release.set()
        assert await asyncio.gather(*calls) == ["0", "1", "2", "3"]
        return log

    log = asyncio.run(scenario())
    assert log.index("2 in") > log.index("0 out") and log.index("3 in") > log.index("1 out")


def test_a_call_that_leaves_and_comes_straight_back_queues_behind_the_waiters() -> None:
    """First come, first served: what redis-py's BlockingConnectionPool does not promise
    (the task that releases a connection may take it again ahead of the waiters)."""

    async def scenario() -> list[str]:
        gate, release, log = CallGate(1, timeout=5), asyncio.Event(), []

        async def twice() -> None:
            await _blocking(gate, release, log, "first")
            await _blocking(gate, release, log, "again")  # no yield in between

        busy = asyncio.ensure_future(twice())
        await _until(lambda: log == ["first in"])
        waiter = asyncio.ensure_future(_blocking(gate, release, log, "waiter"))
        await asyncio.sleep(0)  # the behaviour under test: let it queue
        release.set()
        await asyncio.gather(busy, waiter)
        return log

    log = asyncio.run(scenario())
    assert log.index("waiter in") < log.index("again in"), log


def test_a_waiter_gives_up_after_the_timeout_with_the_pool_wording() -> None:
    async def scenario() -> None:
        gate, release, log = CallGate(1, timeout=0.05), asyncio.Event(), []
        holder = asyncio.ensure_future(_blocking(gate, release, log, "holder"))
        await _until(lambda: log == ["holder in"])
        with pytest.raises(redis.exceptions.ConnectionError, match=NO_CONNECTION):
            await _blocking(gate, release, log, "late")
        release.set()
        assert await holder == "holder"
        release.clear()
        second = asyncio.ensure_future(_blocking(gate, release, log, "again"))
        await _until(lambda: "again in" in log)  # the place is free again
        release.set()
        await second

    asyncio.run(scenario())


def test_a_cancelled_waiter_takes_no_place() -> None:
    async def scenario() -> None:
        gate, release, log = CallGate(1, timeout=5), asyncio.Event(), []
        holder = asyncio.ensure_future(_blocking(gate, release, log, "holder"))
        await _until(lambda: log == ["holder in"])
        waiter = asyncio.ensure_future(_blocking(gate, release, log, "cancelled"))
        await asyncio.sleep(0)  # the behaviour under test: let it start waiting
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        release.set()
        await holder
        release.clear()
        nxt = asyncio.ensure_future(_blocking(gate, release, log, "next"))
        await _until(lambda: "next in" in log)
        release.set()
        await nxt
        assert "cancelled in" not in log

    asyncio.run(scenario())


def test_a_call_inside_the_gate_enters_again_without_waiting() -> None:
    async def scenario() -> str:
        gate = CallGate(1, timeout=0.05)
        inner = gate.guard(lambda: "inner")
        return str(await concurrency.greenlet_spawn(gate.guard(inner)))

    assert asyncio.run(scenario()) == "inner"
