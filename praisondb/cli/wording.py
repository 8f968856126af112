"""Library messages speak Python (``pass auto_migrate=True``); the CLI speaks flags.

Errors and report notes are written once, for API users. When one reaches a CLI user,
:func:`for_command` rewrites each Python keyword it knows into the flag of the command
being run (``--auto-migrate``), or into a hint that fits a command without that flag.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import click


@dataclass(frozen=True)
class Rewrite:
    """``pattern`` in a library message; ``param`` names the click parameter that does it."""

    pattern: re.Pattern[str]
    param: str
    with_flag: str
    without_flag: str


REWRITES: tuple[Rewrite, ...] = (
    Rewrite(
        re.compile(r" \(or pass auto_migrate=True\)"),
        "auto_migrate",
        " (or add --auto-migrate)",
        "",
    ),
    Rewrite(
        re.compile(r"pass readonly=False to run writes"),
        "write",
        "add --write to run writes",
        "use `praisondb analytics query --write` to run writes",
    ),
    Rewrite(
        re.compile(r"\(on_conflict='fail'\)"),
        "on_conflict",
        "(--on-conflict fail)",
        "(on conflict: fail)",
    ),
    Rewrite(
        re.compile(r"pass full=True to re-check"),
        "full",
        "add --full to re-check",
        "use `praisondb copy --full` to re-check",
    ),
    Rewrite(
        re.compile(r"pass skip_damaged=True to import"),
        "skip_damaged",
        "add --skip-damaged to import",
        "use `praisondb import --skip-damaged` to import",
    ),
)


def for_command(text: str, command: click.Command | None) -> str:
    """``text`` with every known Python keyword replaced by ``command``'s flag."""
    names = {p.name for p in command.params} if command is not None else set()
    for rewrite in REWRITES:
        replacement = rewrite.with_flag if rewrite.param in names else rewrite.without_flag
        text = rewrite.pattern.sub(replacement, text)
    return text


def current_command() -> click.Command | None:
    """The command being run, when called inside one."""
    ctx = click.get_current_context(silent=True)
    return ctx.command if ctx is not None else None


def leaf_command(group: click.Command, args: Sequence[str]) -> click.Command:
    """The (sub)command ``args`` name, walking nested groups; ``group`` if none."""
    command = group
    for arg in args:
        if not isinstance(command, click.Group):
            break
        found = command.commands.get(arg)
        if found is not None:
            command = found
    return command
