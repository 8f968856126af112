"""How a test reaches its backend through ``PraisonDBSessionService``: by URL (the
service opens an AsyncPraisonDB per event loop), a sync ``PraisonDB`` (worker threads)
or an ``AsyncPraisonDB`` (greenlets over the native drivers)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest

from praisondb import PraisonDB
from praisondb.aio import AsyncPraisonDB
from tests.backends import TestBackend
from tests.conftest import require_module

require_module("google.adk")  # CI fails without it; elsewhere these tests skip

from praisondb.integrations.adk import PraisonDBSessionService  # noqa: E402

T = TypeVar("T")
VIA = ("url", "sync", "async")


class Opener:
    """Opens services of one test on one backend ``via`` one way; closes them at the end.

    memory:// is private to each database object, so on memory every service of a test
    shares one database (a URL or a new AsyncPraisonDB would each start empty)."""

    def __init__(self, backend: TestBackend, url: str, via: str, sync_db: PraisonDB) -> None:
        self.memory = backend.name == "memory"
        self.url, self.via, self.sync_db = url, via, sync_db
        self.services: list[PraisonDBSessionService] = []
        self.async_dbs: list[AsyncPraisonDB] = []

    def db(self) -> Any:
        """What one new service is handed as ``db``."""
        if self.via == "sync" or (self.via == "url" and self.memory):
            return self.sync_db
        if self.via == "url":
            return self.url
        if self.memory and self.async_dbs:
            return self.async_dbs[0]
        adb = AsyncPraisonDB(self.url)
        self.async_dbs.append(adb)
        return adb

    def service(self) -> PraisonDBSessionService:
        service = PraisonDBSessionService(self.db())
        self.services.append(service)
        return service

    async def inspect(self, fn: Callable[[PraisonDB], T]) -> T:
        """``fn(db)`` on a sync database holding what the services wrote."""
        if self.memory and self.async_dbs:
            return await self.async_dbs[0].run_sync(fn)
        return await asyncio.to_thread(fn, self.sync_db)

    async def close(self) -> None:
        for service in self.services:
            await service.close()
        for adb in self.async_dbs:
            await adb.close()


@pytest.fixture
def run_with(backend: TestBackend, backend_url: str, db: PraisonDB) -> Callable[..., Any]:
    """``run_with(main, via="url")``: ``asyncio.run(main(opener))``, the opener closed after."""

    def run(main: Callable[[Opener], Coroutine[Any, Any, T]], via: str = "url") -> T:
        async def body() -> T:
            opener = Opener(backend, backend_url, via, db)
            try:
                return await main(opener)
            finally:
                await opener.close()

        return asyncio.run(body())

    return run
