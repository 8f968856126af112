"""``praisondb sessions list|show|analyse|delete``."""

from __future__ import annotations

import click

from ..facade import PraisonDB
from ..integrations.labels import describe, framework_of, state_summary
from .options import database_url_option, json_option
from .output import echo_json, echo_table


@click.group()
def sessions() -> None:
    """Browse and delete stored sessions."""


@sessions.command("list")
@database_url_option
@click.option("--user-id", "user_id", help="Only this user's sessions.")
@click.option(
    "--user",
    "old_user",
    hidden=True,
    help="Deprecated spelling of --user-id.",
)
@click.option("--agent", help="Only this agent's sessions.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--cursor", help="Continue after a previous page (printed at its end).")
@json_option
def list_sessions(
    url: str | None,
    user_id: str | None,
    old_user: str | None,
    agent: str | None,
    limit: int,
    cursor: str | None,
    as_json: bool,
) -> None:
    """List sessions, newest first."""
    if old_user is not None:
        if user_id is not None and user_id != old_user:
            raise click.UsageError("--user is the old name of --user-id: give only --user-id")
        click.echo("note: --user is deprecated; use --user-id", err=True)
        user_id = old_user
    with PraisonDB(url) as db:
        page = db.sessions.list(user_id, agent, limit=limit, cursor=cursor)
    if as_json:
        echo_json({"items": page.items, "next_cursor": page.next_cursor})
        return
    echo_table(
        ["id", "user", "agent", "framework", "title", "messages", "updated"],
        [
            [s.id, s.user_id, s.agent, framework_of(s), s.title, s.message_count, s.updated_at]
            for s in page.items
        ],
    )
    if page.next_cursor:
        click.echo(f"more: --cursor {page.next_cursor}")


@sessions.command("show")
@database_url_option
@click.argument("session_id")
@click.option("--last", type=click.IntRange(0), default=None, help="Only the last N messages.")
@json_option
def show_session(url: str | None, session_id: str, last: int | None, as_json: bool) -> None:
    """Show one session, its state entries and its messages."""
    with PraisonDB(url) as db:
        info = db.sessions.get(session_id)
        messages = db.messages.list(session_id, last=last)
        entries = db.state.list(f"session:{info.id}")
    if as_json:
        echo_json(
            {
                "session": info,
                "framework": framework_of(info),
                "state_entries": len(entries),
                "messages": messages,
            }
        )
        return
    click.echo(f"session   {info.id}")
    for label, value in [
        ("user", info.user_id),
        ("agent", info.agent),
        ("framework", framework_of(info)),
        ("title", info.title),
        ("parent", info.parent_id),
        ("created", info.created_at.isoformat()),
        ("updated", info.updated_at.isoformat()),
        ("messages", info.message_count),
        ("state", state_summary(entries)),
    ]:
        if value is not None:
            click.echo(f"{label:<9} {value}")
    for m in messages:
        click.echo(f"{m.seq:>5}  {m.role:<9} {describe(m)}")


@sessions.command("delete")
@database_url_option
@click.argument("session_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def delete_session(url: str | None, session_id: str, yes: bool) -> None:
    """Delete a session with its messages, runs, checkpoints and state."""
    if not yes:
        click.confirm(f"delete session {session_id!r} and everything in it?", abort=True)
    with PraisonDB(url) as db:
        deleted = db.sessions.delete(session_id)
    if not deleted:
        raise click.ClickException(f"no session {session_id!r}")
    click.echo(f"deleted {session_id}")


@sessions.command("analyse")
@database_url_option
@click.argument("session_id")
@json_option
def analyse_session(url: str | None, session_id: str, as_json: bool) -> None:
    """Show one session's figures: interactions, duration, tools, tokens, latency,
    errors, topics and satisfaction (from explicit feedback only)."""
    with PraisonDB(url) as db:
        db.sessions.get(session_id)  # a missing session is an error, not an empty report
        figures = db.session(session_id).analyse()
    if as_json:
        echo_json(figures)
        return
    echo_table(["figure", "value"], [[name, _figure(value)] for name, value in figures.items()])


def _figure(value: object) -> str:
    """A nested figure on one line: ``user=2 assistant=2``; none is ``-``."""
    if isinstance(value, dict):
        return " ".join(f"{k}={_figure(v)}" for k, v in value.items()) or "-"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "-"
    return "-" if value is None else str(value)
