"""``praisondb demo``: the main job on embedded defaults, start to finish.

The demo is a list of steps sharing one :class:`DemoContext`; each feature area adds
its step to ``DEMO_STEPS``. Everything lives in one directory, SQLite by default.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import click

from ..agents.demo import managed_agent_step
from ..facade import PraisonDB
from ..model import Message
from .analytics import demo_report_step

SESSION_ID = "demo:support"


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
        ctx.echo(f"  {message.seq:>3}  {message.role:<9} {_text(message)}")


def _text(message: Message) -> str:
    content = message.content
    return content if isinstance(content, str) else " ".join(str(b.get("text", b)) for b in content)


SCRIPT_FIRST = [
    ("user", "Hi! My order #1042 arrived damaged."),
    ("assistant", "Sorry to hear that. Could you describe the damage?"),
    ("user", "The box was crushed and the mug inside is cracked."),
    ("assistant", "Thanks. I can send a replacement or refund you. Which do you prefer?"),
]
SCRIPT_SECOND = [
    ("user", "A replacement, please."),
    ("assistant", "Done: replacement for order #1042 ships tomorrow."),
]


def conversation_step(ctx: DemoContext) -> None:
    """Store a conversation, then let a second process resume it."""
    db = ctx.db
    if db.sessions.exists(SESSION_ID):
        db.sessions.delete(SESSION_ID)
    db.sessions.create(SESSION_ID, user_id="u-42", agent="support", title="Damaged order")
    db.messages.extend(SESSION_ID, [{"role": r, "content": c} for r, c in SCRIPT_FIRST])
    db.state.set("order", "1042", scope=f"session:{SESSION_ID}")
    ctx.echo(f"stored {len(SCRIPT_FIRST)} messages in {db.database_url.redacted}")
    ctx.close()  # the first process is done; a fresh one picks the session up
    subprocess.run(  # noqa: S603 - our own interpreter and module, no user input
        [sys.executable, "-m", "praisondb.cli", "demo", "--dir", str(ctx.directory), "--resume"],
        check=True,
    )
    print_history(ctx, SESSION_ID, "the conversation, read back after the second process:")


def resume_conversation(ctx: DemoContext) -> None:
    """Runs in the second process: continue where the first one stopped."""
    db = ctx.db
    info = db.sessions.get(SESSION_ID)
    order = db.state.get("order", scope=f"session:{SESSION_ID}")
    ctx.echo(f"second process resumed {info.id!r} at message {info.last_seq} (order {order})")
    for role, content in SCRIPT_SECOND:
        db.messages.append(SESSION_ID, role, content)


def start_over(ctx: DemoContext) -> None:
    """A re-run replaces the previous run instead of adding to it.

    The steps replace their own sessions; the analytics log is append-only, so the
    demo's own analytics directory is emptied, or a second run would count every
    session, message and run twice.
    """
    analytics = Path(ctx.analytics_url.removeprefix("chdb://"))
    if analytics.is_dir():
        shutil.rmtree(analytics)
        ctx.echo(f"(re-run: the previous demo's analytics in {analytics} were replaced)")


DEMO_STEPS: list[Callable[[DemoContext], None]] = [
    conversation_step,
    managed_agent_step,
    demo_report_step,
]


@click.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("praisondb-demo"),
    show_default=True,
    help="Where the demo keeps its databases.",
)
@click.option("--resume", is_flag=True, hidden=True, help="Internal: the second process.")
def demo(directory: Path, resume: bool) -> None:
    """Run a scripted agent conversation on embedded defaults and print what was stored."""
    directory.mkdir(parents=True, exist_ok=True)
    ctx = DemoContext(directory.resolve())
    try:
        if resume:
            resume_conversation(ctx)
            return
        start_over(ctx)
        for step in DEMO_STEPS:
            step(ctx)
    finally:
        ctx.close()


def register(group: click.Group) -> None:
    group.add_command(demo)
