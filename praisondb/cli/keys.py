"""``praisondb keys create|list|revoke``: the API keys ``praisondb serve`` accepts.

Keys live in the server's state store (scope ``praisondb.keys``): give these commands
the same ``--database-url`` (and ``--state-url``, if the server has one) as the server.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..facade import PraisonDB
from .options import DATABASE_URL_ENV
from .output import echo_json, echo_table

F = TypeVar("F", bound=Callable[..., Any])


def _store_options(func: F) -> F:
    func = click.option(
        "--state-url",
        envvar="PRAISONDB_STATE_URL",
        show_envvar=True,
        help="The server's fast-state store, if it has one (keys are kept there).",
    )(func)
    return click.option(
        "--database-url",
        "--url",
        "url",
        envvar=DATABASE_URL_ENV,
        show_envvar=True,
        required=True,
        help="The server's conversation store URL.",
    )(func)


def _open(url: str, state_url: str | None) -> PraisonDB:
    return PraisonDB(url, state_url=state_url)


@click.group()
def keys() -> None:
    """Create, list and revoke the API keys `praisondb serve` accepts."""


@keys.command("create")
@click.argument("name")
@_store_options
@click.option("--tenant", default="default", show_default=True, help="The key's tenant.")
@click.option("--rate", help="Requests this key may make, e.g. 10/s or 600/min (default: none).")
def create(name: str, url: str, state_url: str | None, tenant: str, rate: str | None) -> None:
    """Make a key NAME and print it: the only time it is shown (only its hash is kept)."""
    from ..server.keys import KeyStore, parse_rate

    per_second = parse_rate(rate)
    with _open(url, state_url) as db:
        key = KeyStore(db).create(name, tenant=tenant, rate=per_second)
    click.echo(key)
    click.echo(f"API key {name!r} for tenant {tenant!r}: store it now, it is not kept.", err=True)


@keys.command("list")
@_store_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_keys(url: str, state_url: str | None, as_json: bool) -> None:
    """List the keys (names, tenants, rates, revoked): never a secret."""
    from ..server.keys import KeyStore

    with _open(url, state_url) as db:
        records = [r.public() for r in KeyStore(db).list()]
    if as_json:
        echo_json(records)
        return
    headers = ["name", "id", "tenant", "created_at", "revoked", "rate"]
    echo_table(headers, [[r[h] for h in headers] for r in records])


@keys.command("revoke")
@click.argument("name")
@_store_options
def revoke(name: str, url: str, state_url: str | None) -> None:
    """Revoke key NAME: servers refuse it within seconds (their key cache)."""
    from ..server.keys import KeyStore

    with _open(url, state_url) as db:
        KeyStore(db).revoke(name)
    click.echo(f"revoked API key {name!r}")
