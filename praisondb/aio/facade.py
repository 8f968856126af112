"""``AsyncPraisonDB``: the async face of :class:`praisondb.PraisonDB`.

It owns one sync core (a ``PraisonDB`` whose stores sit on native async drivers) and a
bridge that runs each core call without blocking the loop; every repository and
session method is generated from the sync class (faces.py). Constructing it touches no
network; the stores open on the first awaited call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from ..analytics.facade import Analytics
from ..core.events import EventLog
from ..core.session_memory import SessionMemory
from ..errors import DatabaseClosed
from ..facade import PraisonDB
from ..stores import async_io, open_store
from ..urls import StoreURL
from .bridge import Bridge, GreenletBridge, ThreadBridge
from .context import Closing
from .faces import (
    AsyncCheckpoints,
    AsyncLifecycle,
    AsyncMessages,
    AsyncRuns,
    AsyncSession,
    AsyncSessions,
    AsyncState,
)
from .memory import AsyncMemory

T = TypeVar("T")


class _Core(PraisonDB):
    """The sync core of one AsyncPraisonDB: its stores open with ``io`` drivers."""

    io = "sync"

    def _open(self, url: StoreURL, role: str, options: dict[str, Any]) -> Any:
        if role == "analytics":  # logging never waits on I/O; queries go through run_sync
            return super()._open(url, role, options)
        return open_store(url, role, io=self.io, **options)

    def open_stores(self) -> None:
        """Open the conversation and state stores now, while nothing else runs (no lazy
        race on the facade's lock between greenlets of one thread)."""
        _ = self.conversations, self.state_store

    def close_analytics(self) -> None:
        """Flush and close the analytics sink (blocking I/O: run on a worker thread)."""
        sink, self._analytics = self._analytics, None
        if sink is not None:
            sink.close()


class AsyncPraisonDB(AsyncLifecycle, Closing):
    """The async face: ``async with AsyncPraisonDB(url) as db: await db.messages.append(...)``.

    Same URLs, options, repositories, errors and guarantees as :class:`~praisondb.PraisonDB`,
    every method awaited. SQL, Redis and MongoDB stores run on their native async drivers
    (psycopg's async connections, aiomysql, aiosqlite, ``redis.asyncio``, pymongo's
    ``AsyncMongoClient``); the JSON file store runs its file I/O on worker threads.
    The PraisonAI agent-db hooks (``on_user_message``, ...) are here too, awaited.
    """

    def __init__(
        self,
        database_url: str | None = None,
        state_url: str | None = None,
        analytics_url: str | None = None,
        *,
        state_options: dict[str, Any] | None = None,
        analytics_options: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        self._core = _Core(
            database_url,
            state_url,
            analytics_url,
            state_options=state_options,
            analytics_options=analytics_options,
            **options,
        )
        super().__init__(self._core, self)
        self._bridge: Bridge | None = None
        self._closed = False
        self._opening: asyncio.Lock | None = None
        self.sessions = AsyncSessions(self._core.sessions, self)
        self.messages = AsyncMessages(self._core.messages, self)
        self.state = AsyncState(self._core.state, self)
        self.checkpoints = AsyncCheckpoints(self._core.checkpoints, self)
        self.runs = AsyncRuns(self._core.runs, self)

    def __repr__(self) -> str:
        return "Async" + repr(self._core)

    @property
    def database_url(self) -> StoreURL:
        return self._core.database_url

    @property
    def state_url(self) -> StoreURL | None:
        return self._core.state_url

    @property
    def analytics_url(self) -> StoreURL | None:
        return self._core.analytics_url

    @property
    def sync(self) -> PraisonDB:
        """The sync core, for code passed to :meth:`run_sync`."""
        return self._core

    # -- running core calls ---------------------------------------------------------------
    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)``, a call into the sync core, without blocking the loop."""
        bridge = self._bridge
        if bridge is None:
            bridge = await self._open()
        return await bridge.run(fn, *args, **kwargs)

    async def run_sync(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``fn(db, *args, **kwargs)`` with ``db`` the sync :class:`PraisonDB` core.

        For several steps in one trip through the bridge, or for what has no async face
        (analytics queries, transfers)."""
        return await self.run(fn, self._core, *args, **kwargs)

    async def _open(self) -> Bridge:
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._closed:
                raise DatabaseClosed("this AsyncPraisonDB is closed; open a new one")
            if self._bridge is None:
                bridge = self._choose_bridge()
                try:
                    await bridge.run(self._core.open_stores)
                    # The sink talks to ClickHouse (or runs chdb) with blocking calls: open
                    # it off the loop. Recording events afterwards never waits (journal).
                    await asyncio.to_thread(lambda: self._core.analytics)
                except BaseException:
                    await bridge.stop()
                    await bridge.finish(self._core.close)
                    raise
                self._bridge = bridge
            return self._bridge

    def _choose_bridge(self) -> Bridge:
        """Greenlets when every store has an async driver (or no I/O); else threads."""
        urls = [self._core.database_url]
        if self._core.state_url is not None:
            urls.append(self._core.state_url)
        if all(async_io(url) in ("driver", "inline") for url in urls):
            self._core.io = "async"
            return GreenletBridge()
        return ThreadBridge()

    # -- the rest of the facade -------------------------------------------------------------
    async def session(
        self,
        session_id: str,
        user_id: str | None = None,
        agent: str | None = None,
        *,
        memory: SessionMemory = False,
    ) -> AsyncSession:
        """The :class:`AsyncSession` ``session_id`` (created if it does not exist yet);
        ``memory=`` as in :meth:`praisondb.PraisonDB.session`."""
        if isinstance(memory, AsyncMemory):
            memory = memory.sync
        found = await self.run(self._core.session, session_id, user_id, agent, memory=memory)
        return AsyncSession(found, self)

    def memory(
        self,
        quality_threshold: float = 0.0,
        max_memories: int = 1000,
        embed: Callable[[str], Sequence[float]] | None = None,
        recency_half_life: timedelta = timedelta(days=30),
    ) -> AsyncMemory:
        """Long-term memory (:meth:`praisondb.PraisonDB.memory`), awaited; no I/O here."""
        return AsyncMemory(
            self._core.memory(quality_threshold, max_memories, embed, recency_half_life), self
        )

    @property
    def analytics(self) -> Analytics | None:
        """The sync :class:`~praisondb.analytics.Analytics` (None without ``analytics_url``).

        ``record`` never waits on I/O (events go to a journal and a background writer), so
        it is safe on the loop; run queries with ``await db.run_sync(lambda db: ...)``."""
        return self._core.analytics

    @property
    def events(self) -> EventLog:
        return self._core.events

    async def ping(self) -> dict[str, float]:
        """Round-trip each configured role; milliseconds per role."""
        return await self.run(self._core.ping)

    async def close(self) -> None:
        """Fail calls still in flight with DatabaseClosed, flush analytics, release the
        pools. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        bridge = self._bridge
        if bridge is None:
            self._core.close()  # nothing was opened: no I/O to wait on
            return
        await bridge.stop()
        try:
            await asyncio.to_thread(self._core.close_analytics)
        finally:
            await bridge.finish(self._core.close)

    aclose = close


__all__ = ["AsyncPraisonDB"]
