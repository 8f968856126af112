"""Ready queries against the real ClickHouse engine (chdb; a server too when configured).

Every number below is computed by hand from the fixture in :func:`fixture_events`.
Set ``PRAISONDB_TEST_CLICKHOUSE_URL`` (e.g. ``clickhouse://default@127.0.0.1:8123``) to
run the same tests against a ClickHouse server; each test gets its own database.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from praisondb.analytics import SQL, Analytics
from praisondb.cli import cli
from praisondb.errors import ConfigError, ValidationError
from praisondb.model import Event
from praisondb.stores.clickhouse import ClickHouseSink
from praisondb.urls import parse_url

SERVER_URL = os.environ.get("PRAISONDB_TEST_CLICKHOUSE_URL")
TARGETS = ["chdb", *(["server"] if SERVER_URL else [])]
DAY1 = datetime(2024, 3, 1, tzinfo=timezone.utc)
DAY2 = datetime(2024, 3, 2, tzinfo=timezone.utc)


def _url(target: str, tmp_path: Path) -> str:
    if target == "chdb":
        return f"chdb://{tmp_path / 'analytics'}"
    assert SERVER_URL
    sep = "&" if "?" in SERVER_URL else "?"
    return f"{SERVER_URL}{sep}database=pdbt_{uuid.uuid4().hex[:12]}&auto_migrate=true"


@pytest.fixture(params=TARGETS)
def analytics_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    url = _url(request.param, tmp_path)
    yield url
    if request.param == "server":
        sink = ClickHouseSink(parse_url(url, "analytics"))
        try:
            sink.admin_client().command(f"DROP DATABASE IF EXISTS `{sink.layout.database}`")
        finally:
            sink.close()


def open_sink(url: str, **options: object) -> Analytics:
    return Analytics(ClickHouseSink(parse_url(url, "analytics"), spool_dir=None, **options))


def fixture_events() -> list[Event]:
    """Three sessions over two days; see the module docstring of each test for the sums."""

    def at(day: datetime, hour: int, minute: int, second: int = 0) -> datetime:
        return day + timedelta(hours=hour, minutes=minute, seconds=second)

    s1 = {"session_id": "s1", "user_id": "u1", "agent": "a1"}
    s2 = {"session_id": "s2", "user_id": "u1", "agent": "a1"}
    s3 = {"session_id": "s3", "user_id": "u2", "agent": "a2"}
    events = [
        # s1: day 1, 10:00 -> 10:05, 4 messages, 2 runs on m1, 1 tool call
        Event("session_start", ts=at(DAY1, 10, 0), **s1),
        Event("message", ts=at(DAY1, 10, 1), role="user", attributes={"seq": 1}, **s1),
        Event("message", ts=at(DAY1, 10, 2), role="assistant", attributes={"seq": 2}, **s1),
        Event("message", ts=at(DAY1, 10, 3), role="user", attributes={"seq": 3}, **s1),
        Event("message", ts=at(DAY1, 10, 4), role="assistant", attributes={"seq": 4}, **s1),
        Event(
            "run",
            ts=at(DAY1, 10, 2),
            model="m1",
            input_tokens=10,
            output_tokens=5,
            latency_ms=100.0,
            status="completed",
            **s1,
        ),
        Event(
            "run",
            ts=at(DAY1, 10, 4),
            model="m1",
            input_tokens=20,
            output_tokens=15,
            latency_ms=300.0,
            status="completed",
            **s1,
        ),
        Event("tool_call", ts=at(DAY1, 10, 5), tool="t1", latency_ms=50.0, status="ok", **s1),
        # s2: day 2, 09:00 -> 09:02, 2 messages, 1 failed run on m2, a failed tool, an error
        Event("session_start", ts=at(DAY2, 9, 0), **s2),
        Event("message", ts=at(DAY2, 9, 0, 30), role="user", attributes={"seq": 1}, **s2),
        Event("message", ts=at(DAY2, 9, 1), role="assistant", attributes={"seq": 2}, **s2),
        Event(
            "run",
            ts=at(DAY2, 9, 1, 30),
            model="m2",
            input_tokens=7,
            output_tokens=0,
            latency_ms=1000.0,
            status="failed",
            **s2,
        ),
        Event("tool_call", ts=at(DAY2, 9, 1, 40), tool="t1", latency_ms=70.0, status="error", **s2),
        Event("error", ts=at(DAY2, 9, 2), status="error", attributes={"error": "boom"}, **s2),
        # s3: day 2, 12:00 -> 12:01, 1 message, 1 run on m1, 2 tool calls
        Event("session_start", ts=at(DAY2, 12, 0), **s3),
        Event("message", ts=at(DAY2, 12, 0, 10), role="user", attributes={"seq": 1}, **s3),
        Event(
            "run",
            ts=at(DAY2, 12, 0, 20),
            model="m1",
            input_tokens=1,
            output_tokens=2,
            latency_ms=200.0,
            status="completed",
            **s3,
        ),
        Event("tool_call", ts=at(DAY2, 12, 0, 30), tool="t2", latency_ms=30.0, status="ok", **s3),
        Event("tool_call", ts=at(DAY2, 12, 1), tool="t2", latency_ms=10.0, status="ok", **s3),
    ]
    return events


@pytest.fixture
def loaded(analytics_url: str) -> Iterator[Analytics]:
    sink = open_sink(analytics_url)
    try:
        for event in fixture_events():
            sink.record(event)
        sink.flush()
        assert sink.stats()["delivered"] == 19
        yield sink
    finally:
        sink.close()


def test_activity_by_day(loaded: Analytics) -> None:
    result = loaded.activity_by_day()
    assert result.columns == [
        "day",
        "sessions_started",
        "active_sessions",
        "messages",
        "runs",
        "tool_calls",
        "errors",
    ]
    assert result.rows == [
        (date(2024, 3, 1), 1, 1, 4, 2, 1, 0),
        # errors on day 2: the failed run, the failed tool call and the error event
        (date(2024, 3, 2), 2, 2, 3, 2, 3, 3),
    ]
    assert loaded.activity_by_day(since="2024-03-02").rows == [(date(2024, 3, 2), 2, 2, 3, 2, 3, 3)]
    assert loaded.activity_by_day(until=date(2024, 3, 1)).rows == [
        (date(2024, 3, 1), 1, 1, 4, 2, 1, 0)
    ]
    assert loaded.activity_by_day(agent="a2").rows == [(date(2024, 3, 2), 1, 1, 1, 1, 2, 0)]


def test_tokens_by_model(loaded: Analytics) -> None:
    assert loaded.tokens_by_model().rows == [
        (date(2024, 3, 1), "m1", 2, 30, 20, 50),
        (date(2024, 3, 2), "m1", 1, 1, 2, 3),
        (date(2024, 3, 2), "m2", 1, 7, 0, 7),
    ]


def test_latency_by_model(loaded: Analytics) -> None:
    # m1 latencies 100, 200, 300: linear interpolation at p*(n-1)
    assert loaded.latency_by_model().rows == [
        ("m1", 3, 200.0, 200.0, 290.0, 298.0, 300.0),
        ("m2", 1, 1000.0, 1000.0, 1000.0, 1000.0, 1000.0),
    ]


def test_tool_usage(loaded: Analytics) -> None:
    assert loaded.tool_usage().columns == [
        "tool",
        "calls",
        "errors",
        "error_rate",
        "avg_ms",
        "p50_ms",
        "p95_ms",
        "max_ms",
    ]
    assert loaded.tool_usage().rows == [
        ("t1", 2, 1, 0.5, 60.0, 60.0, 69.0, 70.0),
        ("t2", 2, 0, 0.0, 20.0, 20.0, 29.0, 30.0),
    ]
    assert loaded.tool_usage(limit=1).rows[0][0] == "t1"


def test_top_agents_and_users(loaded: Analytics) -> None:
    assert loaded.top_agents().rows == [("a1", 2, 6, 3, 57, 3), ("a2", 1, 1, 1, 3, 0)]
    assert loaded.top_users().rows == [("u1", 2, 6, 3, 57, 3), ("u2", 1, 1, 1, 3, 0)]
    assert loaded.top_users(limit=1).rows == [("u1", 2, 6, 3, 57, 3)]
    assert loaded.top_users(agent="a2").rows == [("u2", 1, 1, 1, 3, 0)]


def test_session_lengths(loaded: Analytics) -> None:
    # s3 has 1 message (60 s); s1 (4, 300 s) and s2 (2, 120 s) fall in 2-5
    assert loaded.session_lengths().rows == [("1", 1, 0.3333, 60.0), ("2-5", 2, 0.6667, 210.0)]


def test_slowest_and_longest_sessions(loaded: Analytics) -> None:
    slowest = loaded.slowest_sessions()
    assert [(r[0], r[3], r[4], r[5]) for r in slowest.rows] == [
        ("s2", 1, 1000.0, 1000.0),
        ("s1", 2, 400.0, 300.0),
        ("s3", 1, 200.0, 200.0),
    ]
    longest = loaded.longest_sessions()
    assert [(r[0], r[1], r[2], r[3], r[4], r[5]) for r in longest.rows] == [
        ("s1", "u1", "a1", 4, 8, 300.0),
        ("s2", "u1", "a1", 2, 6, 120.0),
        ("s3", "u2", "a2", 1, 5, 60.0),
    ]
    assert loaded.longest_sessions(since="2024-03-02", limit=1).rows[0][0] == "s2"


def test_session_timeline(loaded: Analytics) -> None:
    timeline = loaded.session_timeline("s3")
    assert [(r[1], r[4], r[8]) for r in timeline.rows] == [
        ("session_start", "", 0.0),
        ("message", "", 0.0),
        ("run", "", 200.0),
        ("tool_call", "t2", 30.0),
        ("tool_call", "t2", 10.0),
    ]
    assert timeline.rows[0][0].replace(tzinfo=timezone.utc) == DAY2 + timedelta(hours=12)
    assert loaded.session_timeline("nope").rows == []


def test_report_runs_every_query(loaded: Analytics) -> None:
    names = [r.name for r in loaded.report()]
    assert set(names) == set(SQL) - {"session_timeline"}


INJECTIONS = [
    "a1' OR '1'='1",
    "x'); DROP TABLE praisondb.events; --",
    "\\' OR 1=1 --",
    "{agent:String}",
    "a1\\",
]


@pytest.mark.parametrize("evil", INJECTIONS)
def test_injection_in_every_parameter_is_data(loaded: Analytics, evil: str) -> None:
    for method in (
        loaded.activity_by_day,
        loaded.tokens_by_model,
        loaded.latency_by_model,
        loaded.tool_usage,
        loaded.top_users,
        loaded.session_lengths,
        loaded.slowest_sessions,
        loaded.longest_sessions,
    ):
        assert method(agent=evil).rows == [], method.__name__
    assert loaded.session_timeline(evil).rows == []
    for bad_day in (evil, "2024-03-01' OR 1=1", 20240301):
        with pytest.raises(ValidationError):
            loaded.activity_by_day(since=bad_day)  # type: ignore[arg-type]
    for bad_limit in ("1; DROP TABLE x", -1, 0, 10**9, True):
        with pytest.raises(ValidationError):
            loaded.top_users(limit=bad_limit)  # type: ignore[arg-type]
    result = loaded.query(
        "SELECT {v:String} AS v, count() AS n FROM praisondb.events WHERE agent = {v:String}",
        {"v": evil},
    )
    assert result.rows == [(evil, 0)]
    assert loaded.activity_by_day().rows[0][3] == 4  # nothing was dropped or changed


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO praisondb.events (id) VALUES ('x')",
        "ALTER TABLE praisondb.events DELETE WHERE 1",
        "DROP TABLE praisondb.events",
        "  /* hi */ -- there\n TRUNCATE TABLE praisondb.events",
        "CREATE TABLE praisondb.x (a UInt8) ENGINE = Memory",
        "OPTIMIZE TABLE praisondb.events",
        "SELECT 1; DROP TABLE praisondb.events",
        "SELECT 1 SETTINGS readonly = 0",
    ],
)
def test_raw_query_is_read_only(loaded: Analytics, statement: str) -> None:
    with pytest.raises(ValidationError):
        loaded.query(statement)
    assert loaded.query("SELECT count() FROM praisondb.events").rows == [(19,)]


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM file('/etc/hostname', 'LineAsString')",
        "SELECT * FROM url('http://127.0.0.1:9/x', 'LineAsString')",
        "WITH (SELECT count() FROM file('/etc/passwd', 'LineAsString')) AS n SELECT n",
    ],
)
def test_embedded_read_only_query_cannot_reach_files_or_network(
    tmp_path: Path, statement: str
) -> None:
    """chdb runs with the application's rights (a server confines file() itself)."""
    sink = open_sink(_url("chdb", tmp_path))
    try:
        with pytest.raises(ValidationError, match=r"read-only|readonly|READONLY"):
            sink.query(statement)
        assert sink.query("SELECT count() FROM numbers(3)").rows == [(3,)]
        if "file(" in statement:  # what the refusal protects: the engine can when allowed to
            assert sink.query(statement, readonly=False).rows
    finally:
        sink.close()


def test_server_refuses_writes_even_past_the_statement_check(loaded: Analytics) -> None:
    # the text check passes (a SELECT), the readonly session still refuses the write
    with pytest.raises(ValidationError, match=r"read-only|readonly|READONLY"):
        loaded.query("WITH 1 AS x SELECT x FROM numbers(1) SETTINGS readonly = 0")
    written = loaded.query(
        "INSERT INTO praisondb.events (id, ts, type) VALUES ('w', now(), 'x')", readonly=False
    )
    assert written.rows == []
    assert loaded.query("SELECT count() FROM praisondb.events").rows == [(20,)]


@pytest.mark.parametrize(
    "options",
    [
        {"database": "events; DROP"},
        {"database": "1abc"},
        {"database": "a" * 70},
        {"cluster": "c`x"},
        {"cluster": "my cluster"},
        {"ttl_days": -1},
        {"batch_size": 0},
        {"nonsense": 1},
    ],
)
def test_bad_identifiers_and_options_are_config_errors(
    tmp_path: Path, options: dict[str, object]
) -> None:
    with pytest.raises(ConfigError):
        ClickHouseSink(parse_url(f"chdb://{tmp_path / 'x'}", "analytics"), **options)


def test_bad_identifier_in_url(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        ClickHouseSink(parse_url(f"chdb://{tmp_path / 'x'}?database=a-b", "analytics"))
    with pytest.raises(ConfigError):
        ClickHouseSink(parse_url("clickhouse://u:pw@127.0.0.1:1/bad.name", "analytics"))


def test_cli_report_query_and_upgrade(analytics_url: str, tmp_path: Path) -> None:
    if not analytics_url.startswith("chdb"):
        pytest.skip("the CLI opens its own engine; covered on chdb")
    sink = open_sink(analytics_url)
    for event in fixture_events():
        sink.record(event)
    sink.close()
    runner = CliRunner()
    env = {"PRAISONDB_ANALYTICS_URL": analytics_url}
    result = runner.invoke(cli, ["analytics", "upgrade"], env=env)
    assert result.exit_code == 0, result.output
    assert "already at 1" in result.output
    result = runner.invoke(cli, ["analytics", "report", "--json", "--only", "top_users"], env=env)
    assert result.exit_code == 0, result.output
    assert '"u1"' in result.output and '"top_users"' in result.output
    html_path = tmp_path / "report.html"
    result = runner.invoke(cli, ["analytics", "report", "--html", str(html_path)], env=env)
    assert result.exit_code == 0, result.output
    page = html_path.read_text()
    assert "<svg" in page and "Top users" in page
    assert "<script" not in page and "http://" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    )
    result = runner.invoke(cli, ["analytics", "report", "--session", "s3"], env=env)
    assert result.exit_code == 0 and "tool_call" in result.output
    result = runner.invoke(
        cli,
        [
            "analytics",
            "query",
            "SELECT count() AS n FROM praisondb.events WHERE agent = {a:String}",
            "--param",
            "a=a1",
            "--json",
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.output)["results"][0]["rows"] == [[14]]
    result = runner.invoke(cli, ["analytics", "query", "DROP TABLE praisondb.events"], env=env)
    assert isinstance(result.exception, ValidationError)
