"""The ``praisondb`` command: a thin layer over documented functions.

Each command group lives in its own module with a ``register(group)`` function.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import click

from ..errors import PraisonDBError
from .wording import for_command, leaf_command

COMMAND_MODULES = ("doctor", "sessions", "db", "demo", "transfer", "analytics")
_ARGS = "praisondb.args"


class PraisonDBGroup(click.Group):
    """The root group: library errors leave it worded in the running command's flags."""

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


def _drop_interrupted_cleanup(record: logging.LogRecord) -> bool:
    """A Ctrl-C that lands in a driver's cleanup (SQLAlchemy logs a failed pool reset with
    its traceback) is not news: the command reports the interruption itself, once."""
    return not (record.exc_info and isinstance(record.exc_info[1], KeyboardInterrupt))


for _name in COMMAND_MODULES:
    importlib.import_module(f"{__name__}.{_name}").register(cli)


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
