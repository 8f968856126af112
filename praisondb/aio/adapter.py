"""``AsyncDbSessionAdapter``: the session-store bridge of :mod:`praisondb.adapter`, awaited."""

from __future__ import annotations

from typing import Any

from ..adapter import DbSessionAdapter, OnError
from ..errors import ConfigError
from .context import Closing
from .facade import AsyncPraisonDB
from .faces import AsyncDbSessionAdapterBase


class AsyncDbSessionAdapter(AsyncDbSessionAdapterBase, Closing):
    """:class:`~praisondb.DbSessionAdapter` over an :class:`AsyncPraisonDB` (or a URL it
    opens itself); the same methods, awaited, and the same ``on_error`` policy."""

    __slots__ = ("_db", "_owns_db")

    def __init__(
        self,
        db_or_url: AsyncPraisonDB | str,
        *,
        on_error: OnError = "raise",
        agent: str | None = None,
        **options: Any,
    ) -> None:
        if isinstance(db_or_url, AsyncPraisonDB):
            if options:
                raise ConfigError(f"options {sorted(options)} only apply when a URL is given")
            db, owns = db_or_url, False
        elif isinstance(db_or_url, str):
            db, owns = AsyncPraisonDB(db_or_url, **options), True
        else:
            raise ConfigError(
                "AsyncDbSessionAdapter needs an AsyncPraisonDB or a URL, not "
                f"{type(db_or_url).__name__}"
            )
        super().__init__(DbSessionAdapter(db.sync, on_error=on_error, agent=agent), db)
        self._db, self._owns_db = db, owns

    @property
    def db(self) -> AsyncPraisonDB:
        return self._db

    def __repr__(self) -> str:
        return f"AsyncDbSessionAdapter({self._db!r}, on_error={self.on_error!r})"

    async def close(self) -> None:
        """Close the AsyncPraisonDB if this adapter opened it from a URL."""
        if self._owns_db:
            await self._db.close()


__all__ = ["AsyncDbSessionAdapter"]
