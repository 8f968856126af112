"""How an async agent-framework store reaches a praisondb database without blocking
its event loop: shared by the framework integrations (openai_agents, adk).

``db`` may be a database URL (an ``AsyncPraisonDB`` per event loop, on the native async
drivers), a sync ``PraisonDB`` (each operation on a worker thread) or an
``AsyncPraisonDB`` (each operation one trip through its bridge). An operation is a
plain function of the sync core, ``fn(db, *args)``: all its store calls run in one
trip, whichever way the database is reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..aio import AsyncPraisonDB
    from ..facade import PraisonDB

T = TypeVar("T")


class Runner:
    """Runs a sync core operation for a coroutine, without blocking the event loop."""

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        raise NotImplementedError

    async def close(self) -> None:
        """Close what this runner opened (nothing, for a database it was handed)."""


class Threaded(Runner):
    """A sync ``PraisonDB``: each operation on a worker thread."""

    def __init__(self, db: PraisonDB, *, owned: bool = False, inline: bool = False) -> None:
        self.db = db
        self.owned = owned
        self.inline = inline  # memory://: no I/O to wait for

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        if self.inline:
            return fn(self.db, *args)
        return await asyncio.to_thread(fn, self.db, *args)

    async def close(self) -> None:
        if self.owned:
            self.db.close()


class Bridged(Runner):
    """An ``AsyncPraisonDB``: each operation one trip through its bridge."""

    def __init__(self, db: AsyncPraisonDB) -> None:
        self.db = db

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.db.run_sync(fn, *args)


class PerLoop(Runner):
    """A URL: an ``AsyncPraisonDB`` per event loop (its drivers belong to the loop that
    opened them; a framework's ``run_sync`` from several threads runs several loops)."""

    def __init__(self, url: str, options: dict[str, Any]) -> None:
        self.url = url
        self.options = options
        self.dbs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncPraisonDB] = (
            weakref.WeakKeyDictionary()
        )

    def current(self) -> AsyncPraisonDB:
        loop = asyncio.get_running_loop()
        db = self.dbs.get(loop)
        if db is None:
            from ..aio import AsyncPraisonDB

            self.release_ended()
            db = self.dbs[loop] = AsyncPraisonDB(self.url, **self.options)
        return db

    def release_ended(self) -> bool:
        """Release the databases of loops that have ended; False while one still runs.

        An ended loop cannot run its drivers' close any more: what can be released is,
        and the sockets go with the loop's transports."""
        for old, stale in list(self.dbs.items()):
            if old.is_closed():
                with contextlib.suppress(Exception):
                    stale.sync.close()
                del self.dbs[old]
        return not self.dbs

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.current().run_sync(fn, *args)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        for owner, db in list(self.dbs.items()):
            if owner is loop:
                await db.close()
            else:
                with contextlib.suppress(Exception):
                    db.sync.close()
        self.dbs.clear()


def make_runner(db: object, options: dict[str, Any]) -> Runner:
    """The runner for what a caller handed as ``db`` (see the module docstring)."""
    from ..aio import AsyncPraisonDB
    from ..facade import PraisonDB

    if isinstance(db, AsyncPraisonDB):
        return Bridged(db)
    if isinstance(db, PraisonDB):
        return Threaded(db)
    if isinstance(db, str):
        from ..stores import async_io
        from ..urls import parse_url

        if async_io(parse_url(db)) == "inline":
            return Threaded(PraisonDB(db, **options), owned=True, inline=True)
        return PerLoop(db, options)
    raise ConfigError(
        f"db must be a database URL, a PraisonDB or an AsyncPraisonDB, not {type(db).__name__}"
    )


async def settle(awaitable: Coroutine[Any, Any, T]) -> T:
    """Wait for a write's outcome even when the caller is cancelled meanwhile (then
    re-raise the cancellation): a write is never abandoned half-way by a cancel."""
    task = asyncio.ensure_future(awaitable)
    cancelled: asyncio.CancelledError | None = None
    while not task.done():
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError as exc:
            cancelled = cancelled or exc
    if cancelled is not None:
        if not task.cancelled():
            task.exception()  # retrieved: the caller hears of its cancellation instead
        raise cancelled
    return task.result()
