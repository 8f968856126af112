"""The demo's steps: a stored conversation resumed by a second process, a fact it taught
remembered by a new session, a managed agent, and the analytics report of everything
they logged.

Each feature area adds its step to ``DEMO_STEPS``; everything lives in one directory.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import click

from ..analytics.report import text_report
from ..errors import ValidationError
from .context import DemoContext, print_history
from .managed import managed_agent_step
from .memory_step import memory_step

SESSION_ID = "demo:support"


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


def demo_report_step(ctx: DemoContext) -> None:
    """Flush what the demo logged to the embedded engine and print the analytics report."""
    sink = ctx.db.analytics
    if sink is None:
        raise ValidationError("the demo database has no analytics_url")
    sink.flush()
    ctx.echo(click.style(f"analytics report from {sink.url.redacted}:", bold=True))
    results = sink.report(
        names=("activity_by_day", "top_agents", "top_users", "session_lengths", "longest_sessions")
    )
    results.append(sink.session_timeline(SESSION_ID, limit=50))
    ctx.echo(text_report(results))


DEMO_STEPS: list[Callable[[DemoContext], None]] = [
    conversation_step,
    memory_step,
    managed_agent_step,
    demo_report_step,
]


def run(directory: Path, *, resume: bool = False) -> None:
    """Run every step in ``directory`` (``resume``: be the second process of the first step)."""
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
