"""Analytics: every session event logged to ClickHouse, and ready queries over the log.

::

    PraisonDB.analytics ─> Analytics (facade.py)      record/flush/close/stats delegate
                            │   └─ ReadyQueries (queries.py)  constant SQL, QueryResult
                            │          └─ run_query ─> any QuerySource (the sink)
                            └─ sink: stores/clickhouse/      delivery only: buffer, flights,
                                     │                       spool/journal orchestration
                                     ├─ codec.py    events -> columns -> Arrow / JSON
                                     ├─ journal.py  mmap journal: a SIGKILL loses nothing
                                     ├─ spool.py    fsynced JSONL while ClickHouse is away
                                     ├─ schema.py   tables, rollups, migrations (Layout)
                                     └─ options.py  option table, default spool directory
    report.py    QueryResult -> text table, JSON, self-contained HTML
    backfill.py  existing conversations -> events, idempotently

Importing this package loads no driver: the sink (``praisondb.stores.clickhouse``)
imports clickhouse-connect when an ``analytics_url`` is opened.
"""

from __future__ import annotations

from .facade import Analytics
from .queries import REPORT, SQL, QueryResult, QuerySource, ReadyQueries, check_read_only
from .schema import Layout

__all__ = [
    "REPORT",
    "SQL",
    "Analytics",
    "Layout",
    "QueryResult",
    "QuerySource",
    "ReadyQueries",
    "check_read_only",
]
