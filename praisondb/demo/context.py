"""What the demo's steps share: one directory, one database object, one way to print."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import click

from ..facade import PraisonDB
from ..model import Message


@dataclass
class DemoContext:
    directory: Path
    echo: Callable[[str], None] = click.echo
    _db: PraisonDB | None = field(default=None, repr=False)

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.directory / 'demo.db'}"

    @property
    def analytics_url(self) -> str:
        """The embedded ClickHouse engine, beside the SQLite file."""
        return f"chdb://{self.directory / 'analytics'}"

    @property
    def db(self) -> PraisonDB:
        if self._db is None:
            self._db = PraisonDB(self.database_url, analytics_url=self.analytics_url)
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def print_history(ctx: DemoContext, session_id: str, title: str) -> None:
    ctx.echo(click.style(title, bold=True))
    for message in ctx.db.messages.list(session_id):
        ctx.echo(f"  {message.seq:>3}  {message.role:<9} {message_line(message)}")


def message_line(message: Message) -> str:
    """One message as a short line: tool blocks shown by name, long text cut at 90."""
    content = message.content
    if isinstance(content, str):
        text = content
    else:
        text = " ".join(
            str(b.get("text") or f"<{b.get('type')} {b.get('name', '')} {b.get('input', '')}>")
            for b in content
        )
    text = " ".join(text.split())
    return text if len(text) <= 90 else text[:87] + "..."
