"""The demo's long-term memory step: what one session learns, a new session knows."""

from __future__ import annotations

import click

from .context import DemoContext

FIRST = "demo:support"
LATER = "demo:support-later"
USER = "u-42"
FACT = "Prefers a replacement over a refund for damaged orders"


def memory_step(ctx: DemoContext) -> None:
    """Remember a fact in the support session, then open a new session (from a new
    database object) and show that its context starts with that memory."""
    memory = ctx.db.memory()
    memory.clear(user_id=USER)  # a re-run replaces the previous run's memories
    if ctx.db.sessions.exists(LATER):
        ctx.db.sessions.delete(LATER)
    first = ctx.db.session(FIRST, user_id=USER, memory=True)
    item = first.memory.add(FACT, importance=0.9, relevance=0.8, metadata={"source": FIRST})
    assert item is not None
    ctx.echo(f"remembered for {USER}: {item.text!r} (quality {item.quality:.2f})")
    ctx.close()  # a new database object: nothing carried over in memory
    later = ctx.db.session(LATER, user_id=USER, memory=True)
    later.add_user("Hi again, another order came damaged.")
    context = later.context()
    ctx.echo(click.style(f"a new session {LATER!r} starts its context with:", bold=True))
    for line in str(context[0].content).splitlines():
        ctx.echo(f"  {line}")
