"""``async with`` and ``async for`` for the faces (mixins; everything else is a table)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, TypeVar

from ..errors import PraisonDBError
from ..model import Message
from .face import Runner, iterate

C = TypeVar("C")
SC = TypeVar("SC", bound="SyncContext")


class SyncContext:
    """``async with face:`` runs the sync object's own ``with`` (a lease: acquire and
    release; a session: flush and release its leases) through the bridge."""

    __slots__ = ()
    _sync: Any
    _runner: Runner

    async def __aenter__(self: SC) -> SC:
        try:
            await self._runner.run(self._sync.__enter__)
        except asyncio.CancelledError as cancelled:
            # The enter may have finished just before the cancel reached it (a worker
            # thread cannot be interrupted): undo it, or the lease it took stays taken.
            with contextlib.suppress(PraisonDBError):
                await self._runner.run(
                    self._sync.__exit__, type(cancelled), cancelled, cancelled.__traceback__
                )
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._runner.run(self._sync.__exit__, exc_type, exc, tb)


class SessionContext(SyncContext):
    """``async for message in session``, and the database a session belongs to."""

    __slots__ = ()

    @property
    def db(self) -> Any:
        """The ``AsyncPraisonDB`` this session belongs to."""
        return self._runner

    def __aiter__(self) -> AsyncIterator[Message]:
        return iterate(self._runner, self._sync.__iter__)


class Closing:
    """``async with x:`` closes ``x`` (an AsyncPraisonDB, an adapter) at the end."""

    async def close(self) -> None:
        raise NotImplementedError  # pragma: no cover - every user defines it

    async def __aenter__(self: C) -> C:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


__all__ = ["Closing", "SessionContext", "SyncContext"]
