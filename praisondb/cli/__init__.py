"""The ``praisondb`` command: a thin layer over documented functions.

Each command (or command group) lives in its own module and is imported only when it
runs: ``praisondb --help`` lists them from :data:`COMMANDS`, so it loads no database
library, and ``praisondb sessions list --url json://...`` never loads SQLAlchemy.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import click

from ..errors import PraisonDBError
from .wording import for_command, leaf_command

COMMANDS: dict[str, tuple[str, str]] = {
    "analytics": (
        "analytics:analytics_group",
        "Analytics over ClickHouse: upgrade the schema, report, backfill, query.",
    ),
    "copy": (
        "transfer:copy_command",
        "Copy sessions, messages, runs, checkpoints and state from SOURCE to TARGET.",
    ),
    "db": ("db:db_group", "Manage the SQL schema (Alembic migrations shipped with praisondb)."),
    "demo": (
        "demo:demo",
        "Run a scripted agent conversation on embedded defaults and print what was stored.",
    ),
    "doctor": (
        "doctor:doctor",
        "Check each configured store: reachable, schema version, round-trip latency.",
    ),
    "export": (
        "transfer:export_command",
        "Write sessions and state from SOURCE to an archive FILE (JSON Lines, .gz to compress).",
    ),
    "import": ("transfer:import_command", "Load an archive FILE into TARGET."),
    "keys": ("keys:keys", "Create, list and revoke the API keys `praisondb serve` accepts."),
    "serve": (
        "serve:serve_command",
        "Serve sessions, messages and state over HTTP (clients use praisondb+http://HOST:PORT).",
    ),
    "sessions": ("sessions:sessions", "Browse and delete stored sessions."),
    "verify": (
        "transfer:verify_command",
        "Compare SOURCE (a store, or an archive file) with TARGET; exit 1 if they differ.",
    ),
}
"""Command name -> (``module:attribute`` in this package, the one-line help ``--help`` shows)."""
_ARGS = "praisondb.args"


class PraisonDBGroup(click.Group):
    """The root group: commands load on use; library errors leave it worded in the running
    command's flags."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, _, attribute = COMMANDS[cmd_name][0].partition(":")
            command = getattr(importlib.import_module(f"{__name__}.{module}"), attribute)
            self.add_command(command, cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The listing from :data:`COMMANDS`, without importing a single command module."""
        limit = formatter.width - 6 - max(len(name) for name in COMMANDS)
        rows = [(name, _shorten(COMMANDS[name][1], limit)) for name in COMMANDS]
        with formatter.section("Commands"):
            formatter.write_dl(sorted(rows))

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta[_ARGS] = tuple(args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PraisonDBError as exc:
            text = for_command(str(exc), leaf_command(self, ctx.meta.get(_ARGS, ())))
            if text == str(exc):
                raise
            raise _reworded(exc, text) from exc


def _reworded(exc: PraisonDBError, text: str) -> PraisonDBError:
    """The same class and fields with new text, so callers still catch what they expect."""
    reworded = type(exc).__new__(type(exc), text)  # no __init__: its arguments vary by class
    reworded.__dict__.update(vars(exc))
    return reworded


@click.group(cls=PraisonDBGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="praisondb")
@click.option("-v", "--verbose", count=True, help="Log more (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """praisondb: one data layer for AI-agent sessions, and tools to move and analyse it."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(_drop_interrupted_cleanup)


def _shorten(text: str, limit: int) -> str:
    """Cut at a word to fit ``limit`` characters, as click shortens a command's help."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 3, 1)].rsplit(" ", 1)[0].rstrip(",;:") + "..."


def _drop_interrupted_cleanup(record: logging.LogRecord) -> bool:
    """A Ctrl-C that lands in a driver's cleanup (SQLAlchemy logs a failed pool reset with
    its traceback) is not news: the command reports the interruption itself, once."""
    return not (record.exc_info and isinstance(record.exc_info[1], KeyboardInterrupt))


def main() -> None:
    """Entry point: library errors become one clean line and exit code 2 (1 is for 'verify failed')."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except PraisonDBError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
