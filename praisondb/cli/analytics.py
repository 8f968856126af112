"""``praisondb analytics``: schema, reports, backfill and raw queries over ClickHouse.

A thin layer: every command calls a documented function of :mod:`praisondb.analytics`
(its ``queries``, ``schema``, ``report`` and ``backfill`` modules).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
import orjson

from ..analytics.facade import Analytics
from ..analytics.queries import REPORT, QueryResult
from ..analytics.report import html_report, json_report, text_report
from ..analytics.schema import Layout, all_statements
from ..errors import ConfigError
from ..urls import parse_url
from .options import default_url

if TYPE_CHECKING:
    from ..stores.clickhouse import ClickHouseSink

ANALYTICS_URL_ENV = "PRAISONDB_ANALYTICS_URL"
F = TypeVar("F", bound=Callable[..., Any])


def analytics_url_option(func: F) -> F:
    return click.option(
        "--analytics-url",
        "analytics_url",
        envvar=ANALYTICS_URL_ENV,
        show_envvar=True,
        default=None,
        help="ClickHouse URL: clickhouse://host:8123/db, https://host:8443, chdb:///dir.",
    )(func)


def _open(analytics_url: str | None, **options: Any) -> ClickHouseSink:
    url = analytics_url or os.environ.get(ANALYTICS_URL_ENV)
    if not url:
        raise ConfigError(f"no analytics URL: pass --analytics-url or set ${ANALYTICS_URL_ENV}")
    from ..stores import open_analytics_sink

    sink: ClickHouseSink = open_analytics_sink(parse_url(url, "analytics"), **options)  # type: ignore[assignment]
    return sink


def _day(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{what} must be YYYY-MM-DD, not {value!r}") from None
    return value


@click.group("analytics")
def analytics_group() -> None:
    """Analytics over ClickHouse: upgrade the schema, report, backfill, query."""


@analytics_group.command("upgrade")
@analytics_url_option
@click.option(
    "--cluster", default=None, help="Create the schema ON CLUSTER with replicated tables."
)
@click.option(
    "--ttl-days", type=int, default=None, help="Drop events older than N days (0: never)."
)
@click.option("--sql", "print_sql", is_flag=True, help="Print the DDL instead of running it.")
def upgrade_command(
    analytics_url: str | None, cluster: str | None, ttl_days: int | None, print_sql: bool
) -> None:
    """Apply pending schema migrations (creates the schema in an empty database)."""
    if print_sql:
        url = parse_url(analytics_url, "analytics") if analytics_url else None
        database = (url.options.get("database") if url else None) or "praisondb"
        layout = Layout(
            database, cluster or (url.options.get("cluster") if url else None), ttl_days
        )
        for statement in all_statements(layout):
            click.echo(statement + ";\n")
        return
    options: dict[str, Any] = {"auto_migrate": False}
    if cluster:
        options["cluster"] = cluster
    if ttl_days is not None:
        options["ttl_days"] = ttl_days
    sink = _open(analytics_url, **options)
    try:
        before = sink.schema_version()
        applied = sink.upgrade()
        if ttl_days is not None:
            from ..analytics.schema import set_retention

            set_retention(sink.admin_client(), sink.layout)
        after = sink.schema_version()
        where = sink.url.redacted
        if applied:
            click.echo(f"{where}: upgraded {before or '(empty)'} -> {after} (applied {applied})")
        else:
            click.echo(f"{where}: already at {after}")
    finally:
        sink.close()


def _emit(results: list[QueryResult], as_json: bool, html_path: Path | None, title: str) -> None:
    if html_path is not None:
        html_path.write_text(html_report(results, title=title), encoding="utf-8")
        click.echo(f"wrote {html_path}")
    if as_json:
        click.echo(json_report(results).decode())
    elif html_path is None:
        click.echo(text_report(results))


def html_option(help_text: str) -> Callable[[F], F]:
    """``--html FILE``, the same for every command that can write a report."""
    return click.option(
        "--html",
        "html_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help=help_text,
    )


@analytics_group.command("report")
@analytics_url_option
@click.option("--since", default=None, help="First day (YYYY-MM-DD, UTC, inclusive).")
@click.option("--until", default=None, help="Last day (YYYY-MM-DD, UTC, inclusive).")
@click.option("--agent", default=None, help="Only this agent.")
@click.option("--limit", type=int, default=10, show_default=True, help="Rows in top-N tables.")
@click.option("--session", "session_id", default=None, help="Print one session's timeline instead.")
@click.option(
    "--only", multiple=True, type=click.Choice(REPORT), help="Run only these queries (repeatable)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@html_option("Write a self-contained HTML report with charts to this file.")
def report_command(
    analytics_url: str | None,
    since: str | None,
    until: str | None,
    agent: str | None,
    limit: int,
    session_id: str | None,
    only: tuple[str, ...],
    as_json: bool,
    html_path: Path | None,
) -> None:
    """Run the ready queries: activity, tokens, latency, tools, top users/agents, sessions."""
    sink = _open(analytics_url)
    try:
        if session_id is not None:
            results = [Analytics(sink).session_timeline(session_id, limit=max(limit, 1000))]
        else:
            results = Analytics(sink).report(
                _day(since, "--since"),
                _day(until, "--until"),
                agent=agent,
                limit=limit,
                names=only or REPORT,
            )
        _emit(results, as_json, html_path, "praisondb analytics")
    finally:
        sink.close()


@analytics_group.command("sessions")
@analytics_url_option
@click.option("--since", default=None, help="Sessions started on or after this day (YYYY-MM-DD).")
@click.option("--until", default=None, help="Sessions started on or before this day (YYYY-MM-DD).")
@click.option("--agent", default=None, help="Only this agent's sessions.")
@click.option("--session", "session_id", default=None, help="Only this session.")
@click.option(
    "--limit", type=int, default=100, show_default=True, help="At most this many sessions."
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@html_option("Write a self-contained HTML report of the table to this file.")
def sessions_command(
    analytics_url: str | None,
    since: str | None,
    until: str | None,
    agent: str | None,
    session_id: str | None,
    limit: int,
    as_json: bool,
    html_path: Path | None,
) -> None:
    """Per-session figures (what Session.analyse gives, without topics) for many sessions."""
    from ..analytics.sessions import figures

    sink = _open(analytics_url)
    try:
        result = Analytics(sink).session_figures(
            _day(since, "--since"),
            _day(until, "--until"),
            agent=agent,
            session_id=session_id,
            limit=limit,
        )
        if as_json:
            click.echo(orjson.dumps(figures(result), option=orjson.OPT_INDENT_2).decode())
            as_json = False
            if html_path is None:
                return
        _emit([result], as_json, html_path, "praisondb session analytics")
    finally:
        sink.close()


@analytics_group.command("backfill")
@analytics_url_option
@click.option(
    "--from",
    "source_url",
    envvar="PRAISONDB_DATABASE_URL",
    default=None,
    help="Conversation store to read (default: $PRAISONDB_DATABASE_URL).",
)
@click.option("--since", default=None, help="Only sessions updated since (YYYY-MM-DD or ISO time).")
def backfill_command(analytics_url: str | None, source_url: str | None, since: str | None) -> None:
    """Load existing conversations into ClickHouse; running it again adds nothing."""
    from ..analytics.backfill import backfill
    from ..stores import open_conversation_store

    source_text = default_url(source_url)
    if not source_text:
        raise ConfigError("no source: pass --from DATABASE_URL or set $PRAISONDB_DATABASE_URL")
    start: datetime | None = None
    if since:
        try:
            start = datetime.fromisoformat(since)
        except ValueError:
            raise click.BadParameter(f"--since must be a date or ISO time, not {since!r}") from None
        if start.tzinfo is None:
            start = start.replace(tzinfo=timezone.utc)
    source = open_conversation_store(parse_url(source_text))
    sink = _open(analytics_url)
    try:
        result = backfill(
            sink,
            source,
            since=start,
            progress=lambda r: click.echo(
                f"\r{r.sessions} sessions, {r.inserted} events added, {r.skipped} already there",
                nl=False,
                err=True,
            ),
        )
        click.echo("", err=True)
        click.echo(
            f"backfilled {result.sessions} sessions from {source.url.redacted}: "
            f"{result.inserted} events added, {result.skipped} already there"
        )
    finally:
        sink.close()
        source.close()


def _parameters(items: tuple[str, ...]) -> dict[str, str]:
    parameters: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"--param takes name=value, not {item!r}")
        parameters[name] = value
    return parameters


@analytics_group.command("query")
@analytics_url_option
@click.argument("sql")
@click.option(
    "--param",
    "params",
    multiple=True,
    help="A server-side parameter name=value for {name:Type} in the SQL (repeatable).",
)
@click.option("--write", is_flag=True, help="Allow statements that change data (off by default).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def query_command(
    analytics_url: str | None, sql: str, params: tuple[str, ...], write: bool, as_json: bool
) -> None:
    """Run SQL with {name:Type} parameters bound server-side; read-only unless --write."""
    sink = _open(analytics_url)
    try:
        result = Analytics(sink).query(sql, _parameters(params), readonly=not write)
        _emit([result], as_json, None, "query")
    finally:
        sink.close()


__all__ = ["analytics_group"]
