"""``praisondb db``: schema migrations for SQL conversation stores (a layer over praisondb.stores.sql.migrate)."""

from __future__ import annotations

import sys

import click

from ..facade import DEFAULT_DATABASE_URL
from ..stores.sql import migrate
from ..urls import StoreURL, parse_url
from .options import database_url_option, default_url


def _url(url: str | None) -> StoreURL:
    return parse_url(default_url(url) or DEFAULT_DATABASE_URL)


@click.group("db")
def db_group() -> None:
    """Manage the SQL schema (Alembic migrations shipped with praisondb)."""


@db_group.command("upgrade")
@database_url_option
@click.option("--revision", default="head", show_default=True, help="Revision to upgrade to.")
@click.option(
    "--sql",
    "offline",
    is_flag=True,
    help="Print the SQL instead of running it (offline mode; the database is not touched).",
)
def upgrade_command(url: str | None, revision: str, offline: bool) -> None:
    """Upgrade the database schema (creates it in an empty database)."""
    target = _url(url)
    if offline:
        migrate.upgrade(target, revision, sql=True, output=sys.stdout)
        return
    before = migrate.current(target)
    after = migrate.upgrade(target, revision)
    if before == after:
        click.echo(f"{target.redacted}: already at {after}")
    else:
        click.echo(f"{target.redacted}: upgraded {before or '(empty)'} -> {after}")


@db_group.command("downgrade")
@click.argument("revision")
@database_url_option
@click.option(
    "--sql",
    "offline",
    is_flag=True,
    help="Print the SQL instead of running it (offline: REVISION must name the start, "
    "e.g. 0002:0001).",
)
@click.option("--yes", is_flag=True, help="Confirm: the reverted revisions' data is deleted.")
def downgrade_command(url: str | None, revision: str, offline: bool, yes: bool) -> None:
    """Downgrade the schema to REVISION (`base` drops every praisondb table and its data)."""
    target = _url(url)
    if offline:
        migrate.downgrade(target, revision, sql=True, output=sys.stdout)
        return
    before = migrate.current(target)
    if not yes:
        raise click.UsageError(
            f"downgrading {target.redacted} from {before or '(empty)'} to {revision} deletes "
            "the data of every reverted revision's tables (base: all of it); "
            "add --yes to go ahead, or --sql to see the statements"
        )
    after = migrate.downgrade(target, revision)
    if before == after:
        click.echo(f"{target.redacted}: already at {after or '(empty)'}")
    else:
        click.echo(f"{target.redacted}: downgraded {before or '(empty)'} -> {after or '(empty)'}")


@db_group.command("current")
@database_url_option
def current_command(url: str | None) -> None:
    """Print the schema revision the database is at, and whether it is the newest."""
    target = _url(url)
    applied = migrate.current(target)
    head = migrate.head()
    if applied is None:
        state = "empty (run `praisondb db upgrade`)"
    elif applied == head:
        state = f"{applied} (head)"
    elif migrate.is_newer_than_known(applied):
        click.echo(f"{target.redacted}: {applied} (newer than head {head}: upgrade praisondb)")
        click.echo(f"error: {migrate.newer_than_known(applied, target.redacted)}", err=True)
        sys.exit(1)
    else:
        state = f"{applied} (behind head {head}; run `praisondb db upgrade`)"
    click.echo(f"{target.redacted}: {state}")


@db_group.command("history")
@database_url_option
@click.option(
    "--offline", is_flag=True, help="List the revisions without connecting to the database."
)
def history_command(url: str | None, offline: bool) -> None:
    """List the schema revisions, oldest first; marks the database's current one."""
    target = None if offline else _url(url)
    for rev in migrate.history(target):
        marks = [m for m, on in (("head", rev.is_head), ("current", rev.is_current)) if on]
        suffix = f" ({', '.join(marks)})" if marks else ""
        click.echo(f"{rev.down_revision or '<base>'} -> {rev.revision}{suffix}: {rev.message}")
