"""Analytics schema DDL (single node and cluster), the read-only check and the report renderers."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from praisondb.analytics import QueryResult, check_read_only
from praisondb.analytics.report import html_report, json_report, text_table
from praisondb.analytics.schema import (
    MIGRATIONS,
    Layout,
    all_statements,
    check_identifier,
)
from praisondb.errors import ConfigError, ValidationError


def test_migrations_are_numbered_from_one_without_gaps() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))


def test_single_node_ddl() -> None:
    ddl = "\n".join(all_statements(Layout("analytics", ttl_days=90)))
    assert "ON CLUSTER" not in ddl and "Replicated" not in ddl and "Distributed" not in ddl
    assert "CREATE TABLE IF NOT EXISTS `analytics`.`events`" in ddl
    assert "PARTITION BY toYYYYMM(ts)" in ddl
    assert "ORDER BY (agent, model, ts)" in ddl
    assert "type LowCardinality(String)" in ddl and "status LowCardinality(String)" in ddl
    assert "TTL toDateTime(ts) + INTERVAL 90 DAY DELETE" in ddl
    assert "INDEX idx_session session_id TYPE bloom_filter" in ddl
    assert "TO `analytics`.`daily`\nAS SELECT" in ddl
    assert "non_replicated_deduplication_window" in ddl
    assert "TTL" not in "\n".join(all_statements(Layout("analytics")))


def test_cluster_ddl_is_replicated_behind_distributed_tables() -> None:
    statements = all_statements(Layout("analytics", cluster="prod"))
    ddl = "\n".join(statements)
    creates = [
        s
        for s in statements
        if s.startswith(("CREATE TABLE", "CREATE MATERIALIZED", "CREATE DATABASE"))
    ]
    assert creates and all(" ON CLUSTER `prod`" in s for s in creates)
    for table in ("events", "daily", "daily_sessions", "session_stats", "schema_migrations"):
        assert f"`analytics`.`{table}_local` ON CLUSTER `prod`" in ddl
        assert f"ENGINE = Distributed(`prod`, `analytics`, `{table}_local`" in ddl, table
    assert (
        "ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/analytics/events_local', '{replica}')"
        in ddl
    )
    assert "ReplicatedAggregatingMergeTree" in ddl
    assert "`events_local`, cityHash64(session_id))" in ddl
    # the views read and write the local tables, so each shard aggregates its own rows
    assert "TO `analytics`.`daily_local`" in ddl
    assert "FROM `analytics`.`events_local`" in ddl
    assert "FROM `analytics`.`events`\n" not in ddl


@pytest.mark.parametrize(
    "bad", ["", "1a", "a-b", "a b", "a`b", "a;b", "événements", "x" * 64, "a.b"]
)
def test_bad_identifiers(bad: str) -> None:
    with pytest.raises(ConfigError):
        check_identifier(bad, "database")
    with pytest.raises(ConfigError):
        Layout(bad)
    with pytest.raises(ConfigError):
        Layout("ok", cluster=bad)


def test_good_identifiers() -> None:
    assert check_identifier("_a1", "database") == "_a1"
    assert Layout("a" * 63).database == "a" * 63


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1",
        "  with x AS (SELECT 1) SELECT * FROM x",
        "-- c\nSHOW TABLES",
        "/* a */ DESCRIBE t",
        "EXPLAIN SELECT 1",
        "SELECT ';' AS s",
        "SELECT 1;",
    ],
)
def test_read_statements_pass(sql: str) -> None:
    assert check_read_only(sql) == sql


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO t VALUES (1)",
        "DROP TABLE t",
        "ALTER TABLE t DELETE WHERE 1",
        "",
        "  ",
        "/* SELECT */ DELETE FROM t",
        "SELECT 1; DROP TABLE t",
        "SELECT 1 /* ; */ ; TRUNCATE t",
        "SYSTEM SHUTDOWN",
        "SET readonly = 0",
        "SELECTX 1",
    ],
)
def test_write_statements_refused(sql: str) -> None:
    with pytest.raises(ValidationError):
        check_read_only(sql)


def _result() -> QueryResult:
    return QueryResult(
        "top_users",
        "Top users",
        ["user_id", "sessions", "tokens", "last"],
        [
            ("<script>alert(1)</script>", 3, 1234.5, datetime(2024, 1, 2, tzinfo=timezone.utc)),
            ("u2", 1, 2.0, date(2024, 1, 3)),
        ],
        {"kind": "bar", "x": "user_id", "y": ["sessions"]},
    )


def test_renderers_escape_user_data_and_need_no_network() -> None:
    page = html_report([_result()])
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<svg" in page and "<rect" in page
    assert "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    table = text_table(_result())
    assert "1,234.5" in table and "2024-01-02 00:00:00" in table
    assert b'"2024-01-02T00:00:00+00:00"' in json_report([_result()])
    empty = QueryResult("x", "Nothing", ["a"], [])
    assert "(no data)" in text_table(empty) and "no data" in html_report([empty])
