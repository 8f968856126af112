"""praisondb.aio.awaiting.wait: a cancellation a driver swallows still reaches the core.

Before Python 3.12 ``asyncio.wait_for`` drops a cancellation that lands just as its
inner result arrives (pymongo's socket writes use it). The driver below does the same on
purpose: it catches the cancellation and returns. No server is needed to show it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from sqlalchemy.util.concurrency import greenlet_spawn

from praisondb.aio.awaiting import Awaiting, wait

pytestmark = pytest.mark.skipif(
    not hasattr(asyncio.Task, "cancelling"), reason="Task.cancelling() is Python 3.11+"
)


class Driver:
    """A driver object whose ``call`` swallows a cancellation, as wait_for can."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.swallowed = False

    async def call(self) -> str:
        self.entered.set()
        try:
            await asyncio.Event().wait()  # never set: only a cancellation ends it
        except asyncio.CancelledError:
            self.swallowed = True
        return "result"

    async def plain(self) -> str:
        return "plain"


async def run_and_cancel(core: Callable[[Driver], str]) -> None:
    driver = Driver()
    task = asyncio.ensure_future(greenlet_spawn(core, driver))
    await driver.entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert driver.swallowed


def test_a_swallowed_cancellation_is_raised_when_the_driver_call_ends() -> None:
    unwound: list[str] = []

    def core(driver: Driver) -> str:
        try:
            return str(Awaiting(driver).call())
        except asyncio.CancelledError:
            unwound.append("cancelled")
            # the core's cleanup still awaits the driver, and is not cancelled again
            unwound.append(str(Awaiting(driver).plain()))
            raise

    asyncio.run(run_and_cancel(core))
    assert unwound == ["cancelled", "plain"]


def test_without_a_cancellation_the_result_passes() -> None:
    async def main() -> str:
        return str(await greenlet_spawn(lambda: wait(Driver().plain())))

    assert asyncio.run(main()) == "plain"
