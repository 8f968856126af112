"""``praisondb doctor``: is each configured store reachable, current, and how fast?

Doctor only looks: it creates no file, directory or schema (a missing SQLite file is
reported with the command that creates it), and the retry warnings of a failing store
are shown under the table instead of breaking it up.
"""

from __future__ import annotations

import logging
import sqlite3
import sys
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import click

from ..errors import ConfigError, PraisonDBError
from ..facade import DEFAULT_DATABASE_URL
from ..stores import open_store
from ..urls import StoreURL, parse_url, redact_text
from .options import database_url_option, json_option
from .output import echo_json, echo_table


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextmanager
def collected_warnings() -> Iterator[list[str]]:
    """praisondb's log warnings (retries) while checking, kept instead of printed."""
    logger = logging.getLogger("praisondb")
    handler = _Collect()
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def missing(url: StoreURL) -> str | None:
    """Why a file-backed store is absent (opening it would create it), or None."""
    if url.family == "sqlite" and url.path not in ("", ":memory:"):
        path = Path(url.path).expanduser()
        if not path.parent.is_dir():
            return (
                f"the directory {path.parent} does not exist: doctor creates nothing; create "
                f"it, then `praisondb db upgrade --url {url.redacted}`"
            )
        if not path.is_file():
            return (
                f"no SQLite database at {path}: doctor creates nothing; create it with "
                f"`praisondb db upgrade --url {url.redacted}`"
            )
        if _empty_sqlite(path):  # opening would create the tables
            return (
                f"the SQLite database at {path} holds no praisondb schema: doctor creates "
                f"nothing; create it with `praisondb db upgrade --url {url.redacted}`"
            )
    if url.family == "json" and not Path(url.path).expanduser().is_dir():
        return (
            f"no JSON store at {url.path}: doctor creates nothing; the directory is created "
            "when an application first opens the store"
        )
    if url.family == "chdb" and url.path and not Path(url.path).expanduser().is_dir():
        return (
            f"no embedded ClickHouse at {url.path}: doctor creates nothing; create it with "
            f"`praisondb analytics upgrade --analytics-url {url.redacted}`"
        )
    return None


def _empty_sqlite(path: Path) -> bool:
    """True when the file has no schema revision yet; read-only, so nothing is written."""
    from ..stores.sql.schema import VERSION_TABLE

    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            found = conn.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
                (VERSION_TABLE,),
            ).fetchone()
    except sqlite3.Error:
        return False  # unreadable: the normal check reports why
    return bool(found[0] == 0)


def schema_text(version: object) -> str | None:
    """One type for every backend: SQL revisions are strings, others count migrations."""
    return None if version is None else str(version)


def check(role: str, url: str) -> dict[str, Any]:
    """Open one store, ping it three times and read its schema version."""
    parsed = parse_url(url, role)
    result: dict[str, Any] = {
        "role": role,
        "url": parsed.redacted,
        "ok": False,
        "schema": None,
        "latency_ms": None,
        "warnings": [],
    }
    absent = missing(parsed)
    if absent is not None:
        result["error"] = f"{ConfigError.__name__}: {absent}"
        return result
    store: Any = None
    with collected_warnings() as warnings:
        try:
            store = open_store(parsed, role)
            store.ping()  # first contact opens pools: not part of the latency
            timings = []
            for _ in range(3):
                started = time.perf_counter()
                store.ping()
                timings.append((time.perf_counter() - started) * 1000)
            version = getattr(store, "schema_version", None)
            result.update(
                ok=True,
                latency_ms=round(min(timings), 3),
                schema=schema_text(version() if version else None),
            )
        except Exception as exc:  # noqa: BLE001 - doctor reports every failure as a row
            detail = redact_text(str(exc), parsed.secret)
            if not isinstance(exc, PraisonDBError):  # a driver's text: its first line
                detail = (detail.strip().splitlines() or [""])[0]
            result["error"] = f"{type(exc).__name__}: {detail}"
        finally:
            if store is not None:
                store.close()
    result["warnings"] = list(warnings)
    return result


@click.command()
@database_url_option
@click.option(
    "--state-url", envvar="PRAISONDB_STATE_URL", show_envvar=True, help="Fast-state store URL."
)
@click.option(
    "--analytics-url", envvar="PRAISONDB_ANALYTICS_URL", show_envvar=True, help="ClickHouse URL."
)
@json_option
def doctor(
    url: str | None, state_url: str | None, analytics_url: str | None, as_json: bool
) -> None:
    """Check each configured store: reachable, schema version, round-trip latency.

    Creates nothing. Exits 1 when any store fails. URLs are printed with passwords redacted.
    """
    results = [check("conversations", url or DEFAULT_DATABASE_URL)]
    if state_url:
        results.append(check("state", state_url))
    if analytics_url:
        results.append(check("analytics", analytics_url))
    if as_json:
        echo_json(results)
    else:
        _print(results)
    if not all(r["ok"] for r in results):
        sys.exit(1)


def _print(results: list[dict[str, Any]]) -> None:
    echo_table(
        ["role", "url", "status", "schema", "latency ms"],
        [
            [
                r["role"],
                r["url"],
                "ok" if r["ok"] else click.style("FAIL", fg="red"),
                r["schema"],
                r["latency_ms"],
            ]
            for r in results
        ],
    )
    for r in results:
        if not r["ok"]:
            click.echo(f"{r['role']}: {r['error']}", err=True)
        for warning in r["warnings"]:
            click.echo(f"{r['role']}: warning: {warning}", err=True)
