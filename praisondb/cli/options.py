"""Options shared by several commands, declared once."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

DATABASE_URL_ENV = "PRAISONDB_DATABASE_URL"


def database_url_option(func: F) -> F:
    """``--url``: the conversation store; defaults to $PRAISONDB_DATABASE_URL, then SQLite."""
    return click.option(
        "--url",
        "url",
        envvar=DATABASE_URL_ENV,
        default=None,
        show_envvar=True,
        help="Conversation store URL (default: sqlite:///praisondb.db).",
    )(func)


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(
        func
    )


def default_url(url: str | None) -> str | None:
    return url or os.environ.get(DATABASE_URL_ENV) or None
