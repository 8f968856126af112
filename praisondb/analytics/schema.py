"""The ClickHouse analytics schema as numbered migrations, for one node or a cluster.

Why DDL is text here and not bound parameters: ClickHouse cannot bind identifiers inside
a materialized view's ``AS SELECT`` (a ``{x:Identifier}`` there turns the view into a
parameterized view), and the cluster DDL must be testable as text. Every identifier
that reaches this module comes from configuration (the URL), is checked against
:data:`IDENTIFIER` and is back-quoted; no user data is ever formatted into SQL.

Layout (single node)::

    events            MergeTree, PARTITION BY month, ORDER BY (agent, model, ts),
                      a bloom-filter index on session_id (the timeline); more skip
                      indexes were measured to halve insert speed, so there are none
    daily             AggregatingMergeTree per (day, type, agent, model, tool, status, role)
    daily_sessions    AggregatingMergeTree per (day, agent): distinct active sessions
    session_stats     AggregatingMergeTree per session_id: counts, tokens, latency, span
    *_mv              materialized views filling the three rollups from events
    schema_migrations applied migration numbers

With a cluster every table above is ``<name>_local`` (Replicated*MergeTree, created
``ON CLUSTER``) behind a ``Distributed`` table with the plain name, so readers and
writers use the same names in both layouts. Events are sharded by session so each
session's rollup rows are built on one shard.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..errors import ConfigError

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
DEFAULT_DATABASE = "praisondb"
DEDUP_WINDOW = 10_000
"""Blocks remembered per table for insert deduplication (by token or content hash)."""

EVENT_COLUMNS: tuple[str, ...] = (
    "id",
    "ts",
    "type",
    "session_id",
    "user_id",
    "agent",
    "model",
    "role",
    "input_tokens",
    "output_tokens",
    "latency_ms",
    "tool",
    "status",
    "attributes",
)
"""Insert order of the events table; the spool stores rows in this order too."""

ERROR_STATUSES = ("error", "failed")
"""Run and tool-call statuses counted as failures by the rollups and ready queries."""


def check_identifier(value: str, what: str) -> str:
    """Database, cluster and table names: a letter or ``_``, then letters, digits, ``_``."""
    if not isinstance(value, str) or not IDENTIFIER.match(value):
        raise ConfigError(
            f"{what} {value!r} is not a valid identifier "
            "(letters, digits and '_', starting with a letter or '_', at most 63 characters)"
        )
    return value


def quote(identifier: str) -> str:
    """Back-quote an identifier already checked by :func:`check_identifier`."""
    return f"`{identifier}`"


@dataclass(frozen=True)
class Layout:
    """Where the schema lives: database, optional cluster, optional retention."""

    database: str = DEFAULT_DATABASE
    cluster: str | None = None
    ttl_days: int | None = None

    def __post_init__(self) -> None:
        check_identifier(self.database, "analytics database")
        if self.cluster is not None:
            check_identifier(self.cluster, "cluster")
        if self.ttl_days is not None and (
            not isinstance(self.ttl_days, int)
            or isinstance(self.ttl_days, bool)
            or self.ttl_days < 0
        ):
            raise ConfigError(f"ttl_days must be a non-negative integer, not {self.ttl_days!r}")

    # -- naming --------------------------------------------------------------------
    def name(self, table: str) -> str:
        """The fully qualified, quoted name readers and writers use."""
        return f"{quote(self.database)}.{quote(table)}"

    def storage(self, table: str) -> str:
        """The table that physically holds rows (``<table>_local`` on a cluster)."""
        suffix = "_local" if self.cluster else ""
        return f"{quote(self.database)}.{quote(table + suffix)}"

    @property
    def on_cluster(self) -> str:
        return f" ON CLUSTER {quote(self.cluster)}" if self.cluster else ""

    # -- DDL building blocks -----------------------------------------------------------
    def create_table(
        self,
        table: str,
        columns: str,
        *,
        engine: str,
        order_by: str,
        partition_by: str | None = None,
        ttl: str | None = None,
        sharding_key: str = "rand()",
    ) -> list[str]:
        """One MergeTree-family table, or a replicated local table plus a distributed one."""
        tail = ""
        if partition_by:
            tail += f"\nPARTITION BY {partition_by}"
        tail += f"\nORDER BY {order_by}"
        if ttl:
            tail += f"\nTTL {ttl}"
        if self.cluster:
            local = f"{table}_local"
            zk_path = f"'/clickhouse/tables/{{shard}}/{self.database}/{local}'"
            statements = [
                f"CREATE TABLE IF NOT EXISTS {self.storage(table)}{self.on_cluster}\n({columns})\n"
                f"ENGINE = Replicated{engine}({zk_path}, '{{replica}}'){tail}\n"
                f"SETTINGS replicated_deduplication_window = {DEDUP_WINDOW}",
                f"CREATE TABLE IF NOT EXISTS {self.name(table)}{self.on_cluster}\n"
                f"AS {self.storage(table)}\n"
                f"ENGINE = Distributed({quote(self.cluster)}, {quote(self.database)}, "
                f"{quote(local)}, {sharding_key})",
            ]
            return statements
        return [
            f"CREATE TABLE IF NOT EXISTS {self.name(table)}\n({columns})\n"
            f"ENGINE = {engine}(){tail}\n"
            f"SETTINGS non_replicated_deduplication_window = {DEDUP_WINDOW}"
        ]

    def create_view(self, view: str, target: str, select: str) -> str:
        """A materialized view on the storage table; on a cluster each shard fills its own."""
        return (
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {quote(self.database)}.{quote(view)}"
            f"{self.on_cluster}\nTO {self.storage(target)}\nAS {select}"
        )

    def ttl_clause(self) -> str | None:
        if not self.ttl_days:
            return None
        return f"toDateTime(ts) + INTERVAL {int(self.ttl_days)} DAY DELETE"


# -- migrations -------------------------------------------------------------------------


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: Callable[[Layout], list[str]]


def _bootstrap(layout: Layout) -> list[str]:
    """The database and the migrations table: applied before any numbered migration."""
    return [
        f"CREATE DATABASE IF NOT EXISTS {quote(layout.database)}{layout.on_cluster}",
        *layout.create_table(
            "schema_migrations",
            "version UInt32, description String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)",
            engine="ReplacingMergeTree",
            order_by="version",
        ),
    ]


_EVENTS_COLUMNS = """
    id String CODEC(ZSTD(1)),
    ts DateTime64(6, 'UTC') CODEC(Delta, ZSTD(1)),
    type LowCardinality(String),
    session_id String CODEC(ZSTD(1)),
    user_id String CODEC(ZSTD(1)),
    agent LowCardinality(String),
    model LowCardinality(String),
    role LowCardinality(String),
    input_tokens UInt64 CODEC(T64, ZSTD(1)),
    output_tokens UInt64 CODEC(T64, ZSTD(1)),
    latency_ms Float64 CODEC(ZSTD(1)),
    tool LowCardinality(String),
    status LowCardinality(String),
    attributes String CODEC(ZSTD(3)),
    INDEX idx_session session_id TYPE bloom_filter(0.01) GRANULARITY 1
"""

_DAILY_COLUMNS = """
    day Date,
    type LowCardinality(String),
    agent LowCardinality(String),
    model LowCardinality(String),
    tool LowCardinality(String),
    status LowCardinality(String),
    role LowCardinality(String),
    events SimpleAggregateFunction(sum, UInt64),
    input_tokens SimpleAggregateFunction(sum, UInt64),
    output_tokens SimpleAggregateFunction(sum, UInt64),
    latency_sum SimpleAggregateFunction(sum, Float64),
    latency_max SimpleAggregateFunction(max, Float64),
    latency_q AggregateFunction(quantiles(0.5, 0.95, 0.99), Float64)
"""

_DAILY_SELECT = """SELECT
    toDate(ts) AS day, type, agent, model, tool, status, role,
    count() AS events,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(latency_ms) AS latency_sum,
    max(latency_ms) AS latency_max,
    quantilesStateIf(0.5, 0.95, 0.99)(latency_ms, type IN ('run', 'tool_call')) AS latency_q
FROM {events}
GROUP BY day, type, agent, model, tool, status, role"""

_DAILY_SESSIONS_COLUMNS = """
    day Date,
    agent LowCardinality(String),
    sessions AggregateFunction(uniq, String)
"""

_DAILY_SESSIONS_SELECT = """SELECT toDate(ts) AS day, agent, uniqState(session_id) AS sessions
FROM {events}
WHERE session_id != ''
GROUP BY day, agent"""

_SESSION_COLUMNS = """
    session_id String,
    user_id SimpleAggregateFunction(max, String),
    agent SimpleAggregateFunction(max, String),
    started SimpleAggregateFunction(min, DateTime64(6, 'UTC')),
    ended SimpleAggregateFunction(max, DateTime64(6, 'UTC')),
    events SimpleAggregateFunction(sum, UInt64),
    messages SimpleAggregateFunction(sum, UInt64),
    runs SimpleAggregateFunction(sum, UInt64),
    tool_calls SimpleAggregateFunction(sum, UInt64),
    errors SimpleAggregateFunction(sum, UInt64),
    input_tokens SimpleAggregateFunction(sum, UInt64),
    output_tokens SimpleAggregateFunction(sum, UInt64),
    latency_sum SimpleAggregateFunction(sum, Float64),
    latency_max SimpleAggregateFunction(max, Float64)
"""

_SESSION_SELECT = """SELECT
    session_id,
    max(user_id) AS user_id,
    max(toString(agent)) AS agent,
    min(ts) AS started,
    max(ts) AS ended,
    count() AS events,
    countIf(type = 'message') AS messages,
    countIf(type = 'run') AS runs,
    countIf(type = 'tool_call') AS tool_calls,
    countIf(type = 'error' OR status IN ('error', 'failed')) AS errors,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sumIf(latency_ms, type = 'run') AS latency_sum,
    maxIf(latency_ms, type = 'run') AS latency_max
FROM {events}
WHERE session_id != ''
GROUP BY session_id"""


def _initial_schema(layout: Layout) -> list[str]:
    events = layout.storage("events")
    return [
        *layout.create_table(
            "events",
            _EVENTS_COLUMNS,
            engine="MergeTree",
            partition_by="toYYYYMM(ts)",
            order_by="(agent, model, ts)",
            ttl=layout.ttl_clause(),
            sharding_key="cityHash64(session_id)",
        ),
        *layout.create_table(
            "daily",
            _DAILY_COLUMNS,
            engine="AggregatingMergeTree",
            partition_by="toYYYYMM(day)",
            order_by="(day, type, agent, model, tool, status, role)",
        ),
        layout.create_view("daily_mv", "daily", _DAILY_SELECT.format(events=events)),
        *layout.create_table(
            "daily_sessions",
            _DAILY_SESSIONS_COLUMNS,
            engine="AggregatingMergeTree",
            partition_by="toYYYYMM(day)",
            order_by="(day, agent)",
        ),
        layout.create_view(
            "daily_sessions_mv", "daily_sessions", _DAILY_SESSIONS_SELECT.format(events=events)
        ),
        *layout.create_table(
            "session_stats",
            _SESSION_COLUMNS,
            engine="AggregatingMergeTree",
            order_by="session_id",
            sharding_key="cityHash64(session_id)",
        ),
        layout.create_view(
            "session_stats_mv", "session_stats", _SESSION_SELECT.format(events=events)
        ),
    ]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1, "events table, daily/session rollups and their materialized views", _initial_schema
    ),
)
LATEST = MIGRATIONS[-1].version


# -- applying ---------------------------------------------------------------------------


class DDLClient(Protocol):
    """The part of a clickhouse-connect client the migrator uses."""

    def command(self, cmd: str, parameters: Any = None, settings: Any = None) -> Any: ...

    def query(self, query: str, parameters: Any = None, settings: Any = None) -> Any: ...


def current_version(client: DDLClient, layout: Layout) -> int | None:
    """The highest applied migration, or None when the schema was never created."""
    exists = client.query(
        "SELECT count() FROM system.tables WHERE database = {db:String} AND name = {t:String}",
        parameters={"db": layout.database, "t": "schema_migrations"},
    ).result_rows[0][0]
    if not exists:
        return None
    rows = client.query(
        "SELECT max(version), count() FROM {db:Identifier}.{t:Identifier}",
        parameters={"db": layout.database, "t": "schema_migrations"},
    ).result_rows
    version, count = rows[0]
    return int(version) if count else 0


def pending(version: int | None) -> list[Migration]:
    return [m for m in MIGRATIONS if m.version > (version or 0)]


def upgrade(client: DDLClient, layout: Layout) -> list[Migration]:
    """Apply every pending migration in order and record each; returns what was applied.

    Statements are idempotent (``IF NOT EXISTS``), so two processes upgrading at once,
    or an upgrade interrupted half-way, converge on the same schema.
    """
    for statement in _bootstrap(layout):
        client.command(statement)
    applied = pending(current_version(client, layout))
    for migration in applied:
        for statement in migration.statements(layout):
            client.command(statement)
        client.command(
            "INSERT INTO {db:Identifier}.{t:Identifier} (version, description) "
            "VALUES ({v:UInt32}, {d:String})",
            parameters={
                "db": layout.database,
                "t": "schema_migrations",
                "v": migration.version,
                "d": migration.description,
            },
        )
    return applied


def set_retention(client: DDLClient, layout: Layout) -> None:
    """Apply ``layout.ttl_days`` to the events table (0 removes the TTL)."""
    clause = layout.ttl_clause()
    table = layout.storage("events")
    if clause:
        client.command(f"ALTER TABLE {table}{layout.on_cluster} MODIFY TTL {clause}")
    else:
        client.command(f"ALTER TABLE {table}{layout.on_cluster} REMOVE TTL")


def all_statements(layout: Layout) -> list[str]:
    """Every DDL statement a fresh upgrade runs, in order (for review and tests)."""
    statements = list(_bootstrap(layout))
    for migration in MIGRATIONS:
        statements.extend(migration.statements(layout))
    return statements
