"""``Analytics``: what ``db.analytics`` is, over any :class:`~praisondb.stores.base.AnalyticsSink`.

The sink delivers events; this object adds the ready queries on top. ``record`` is the
sink's own bound method (no extra call on the caller's hot path); ``flush``, ``close``,
``ping``, ``stats`` and ``ensure_schema`` delegate. The queries run through the narrow
:class:`~praisondb.analytics.queries.QuerySource` protocol, so a sink that implements
``run_query`` and ``layout`` gets every ready query without inheriting from anything.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

from ..model import Event
from ..stores.base import AnalyticsSink
from ..urls import StoreURL
from .queries import QuerySource, ReadyQueries


@runtime_checkable
class Counted(Protocol):
    """A sink that keeps delivery counters (delivered, spooled, ...)."""

    def stats(self) -> dict[str, Any]: ...


@runtime_checkable
class Migrated(Protocol):
    """A sink with a schema it can create or upgrade on demand."""

    def ensure_schema(self) -> None: ...


class Analytics(ReadyQueries):
    """The analytics of one :class:`~praisondb.PraisonDB`: record events, ask the ready queries.

    ``db.analytics.tokens_by_model()``, ``.report()``, read-only ``.query(sql, params)``;
    ``.sink`` is the delivering sink underneath (a ClickHouse sink for the built-in URLs).
    """

    def __init__(self, sink: AnalyticsSink) -> None:
        source = sink if isinstance(sink, QuerySource) else None
        super().__init__(source, f"analytics sink {sink.url.redacted}")
        self.sink = sink
        self.url: StoreURL = sink.url
        self.record: Callable[[Event], None] = sink.record
        """Journal and queue one event (the sink's own method: never blocks on the network)."""

    def __repr__(self) -> str:
        return f"Analytics({self.sink!r})"

    def __enter__(self) -> Analytics:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def flush(self, timeout: float | None = None) -> None:
        """Deliver (or spool) everything recorded before this call."""
        self.sink.flush(timeout)

    def ping(self) -> None:
        """One round trip; BackendUnavailable when the target does not answer."""
        self.sink.ping()

    def close(self) -> None:
        """Flush and release the sink. Safe to call twice."""
        self.sink.close()

    def stats(self) -> dict[str, Any]:
        """The sink's delivery counters (empty for a sink that keeps none)."""
        return self.sink.stats() if isinstance(self.sink, Counted) else {}

    def ensure_schema(self) -> None:
        """Create or upgrade the sink's schema if it has one (see its ``auto_migrate``)."""
        if isinstance(self.sink, Migrated):
            self.sink.ensure_schema()


__all__ = ["Analytics", "Counted", "Migrated"]
