"""``Analytics`` wraps any AnalyticsSink: delivery delegates, queries need ``run_query``."""

from __future__ import annotations

import pytest

from praisondb.analytics import Analytics, QuerySource
from praisondb.errors import ConfigError
from praisondb.model import Event
from praisondb.urls import StoreURL, parse_url


class ListSink:
    """A third-party sink that only keeps events in memory: no counters, schema or queries."""

    def __init__(self, url: StoreURL) -> None:
        self.url = url
        self.events: list[Event] = []
        self.flushes = 0
        self.closes = 0

    def record(self, event: Event) -> None:
        self.events.append(event)

    def flush(self, timeout: float | None = None) -> None:
        self.flushes += 1

    def ping(self) -> None:
        """Always reachable: it is this process's memory."""

    def close(self) -> None:
        self.closes += 1


def test_analytics_delivers_through_a_sink_that_cannot_query() -> None:
    sink = ListSink(parse_url("clickhouse://app:s3cret@127.0.0.1:1/db", "analytics"))
    analytics = Analytics(sink)
    assert not isinstance(sink, QuerySource)
    assert analytics.record == sink.record  # the sink's own method: no extra call per event
    event = Event("message", session_id="s")
    analytics.record(event)
    analytics.flush()
    analytics.ensure_schema()  # no schema to prepare: nothing happens
    assert (sink.events, sink.flushes, analytics.stats()) == ([event], 1, {})
    assert analytics.url is sink.url
    with pytest.raises(ConfigError, match="cannot answer queries") as refused:
        analytics.tokens_by_model()
    assert "s3cret" not in str(refused.value) and "127.0.0.1" in str(refused.value)
    with pytest.raises(ConfigError, match="cannot answer queries"):
        analytics.query("SELECT 1")
    with analytics:
        pass
    assert sink.closes == 1
