"""``praisondb doctor``: is each configured store reachable, current, and how fast?"""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from ..errors import PraisonDBError
from ..facade import DEFAULT_DATABASE_URL
from ..stores import open_store
from ..urls import parse_url
from .options import database_url_option, json_option
from .output import echo_json, echo_table


def check(role: str, url: str) -> dict[str, Any]:
    """Open one store, ping it three times and read its schema version."""
    result: dict[str, Any] = {"role": role, "url": parse_url(url, role).redacted, "ok": False}
    store: Any = None
    try:
        store = open_store(url, role)
        store.ping()  # first contact opens pools and may migrate: not part of the latency
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            store.ping()
            timings.append((time.perf_counter() - started) * 1000)
        schema = getattr(store, "schema_version", None)
        result.update(
            ok=True, latency_ms=round(min(timings), 3), schema=schema() if schema else None
        )
    except PraisonDBError as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        if store is not None:
            store.close()
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

    Exits 1 when any store fails. URLs are printed with passwords redacted.
    """
    results = [check("conversations", url or DEFAULT_DATABASE_URL)]
    if state_url:
        results.append(check("state", state_url))
    if analytics_url:
        results.append(check("analytics", analytics_url))
    if as_json:
        echo_json(results)
    else:
        echo_table(
            ["role", "url", "status", "schema", "latency ms"],
            [
                [
                    r["role"],
                    r["url"],
                    "ok" if r["ok"] else click.style("FAIL", fg="red"),
                    r.get("schema"),
                    r.get("latency_ms"),
                ]
                for r in results
            ],
        )
        for r in results:
            if not r["ok"]:
                click.echo(f"{r['role']}: {r['error']}", err=True)
    if not all(r["ok"] for r in results):
        sys.exit(1)


def register(group: click.Group) -> None:
    group.add_command(doctor)
