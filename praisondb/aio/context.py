"""The hand-written corners of the generated faces: ``async with`` and ``async for``.

Mixed into ``AsyncSession`` and ``AsyncLease`` (faces.py), whose other methods are
generated from the sync classes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

from ..model import Message
from .face import Runner, iterate


class LeaseContext:
    """``async with session.lock(timeout=5) as lease:``; ``lease.token`` is the fencing token."""

    __slots__ = ()
    _sync: Any
    _runner: Runner

    async def __aenter__(self) -> Any:
        await self._runner.run(self._sync.__enter__)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._runner.run(self._sync.__exit__, exc_type, exc, tb)


class SessionContext:
    """``async for message in session`` and ``async with session:`` (flushes, releases)."""

    __slots__ = ()
    _sync: Any
    _runner: Runner

    @property
    def db(self) -> Any:
        """The ``AsyncPraisonDB`` this session belongs to."""
        return self._runner

    def __aiter__(self) -> AsyncIterator[Message]:
        return iterate(self._runner, self._sync.__iter__)

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._runner.run(self._sync.__exit__, exc_type, exc, tb)


__all__ = ["LeaseContext", "SessionContext"]
