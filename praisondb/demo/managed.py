"""The ``praisondb demo`` step for sessions and managed agents.

It talks to a managed agent (Anthropic's API when ``ANTHROPIC_API_KEY`` is set, else
the local test server started in this process), lets a second process resume the
conversation, then shows a checkpoint, a branch and a restore.

Run the second process by hand with ``python -m praisondb.demo.managed DB_URL SESSION``
(``ANTHROPIC_API_KEY`` and ``ANTHROPIC_BASE_URL`` come from the environment).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..agents.managed import ManagedAgent, ManagedConfig
from ..facade import PraisonDB
from .context import message_line

if TYPE_CHECKING:
    from .context import DemoContext

SESSION_ID = "demo:managed"
CONFIG = ManagedConfig(
    model="claude-sonnet-4-5",
    system="You are a concise support agent for an online shop.",
    tools=["agent_toolset"],
    name="praisondb-demo-support",
)


def _show(echo: Callable[[str], None], db: PraisonDB, session_id: str, title: str) -> None:
    echo(title)
    for message in db.messages.list(session_id):
        echo(f"  {message.seq:>3}  {message.role:<9} {message_line(message)}")


def managed_agent_step(ctx: DemoContext) -> None:
    """A managed-agent conversation, a process restart that resumes it, then branching."""
    from .fake_server import FAKE_API_KEY, FakeManagedAgentsServer

    echo = ctx.echo
    db = ctx.db
    for child in list(db.sessions.iterate(parent_id=SESSION_ID)):
        db.sessions.delete(child.id)
    db.sessions.delete(SESSION_ID)
    with contextlib.ExitStack() as stack:
        api_key = os.environ.get("ANTHROPIC_API_KEY")
        base_url = os.environ.get("ANTHROPIC_BASE_URL")
        if api_key:
            echo(f"\nmanaged agent on Anthropic's API ({CONFIG.model})")
        else:
            server = stack.enter_context(FakeManagedAgentsServer())
            api_key, base_url = FAKE_API_KEY, server.url
            echo(f"\nmanaged agent on the local test server at {base_url} (no ANTHROPIC_API_KEY)")
        agent = ManagedAgent(
            config=CONFIG, api_key=api_key, db=db, session_id=SESSION_ID, base_url=base_url
        )
        for prompt in ("Hi! My order #1042 arrived damaged.", "Please run: lookup-order 1042"):
            echo(f"  user      {prompt}")
            echo(f"  agent     {agent.run(prompt)}")
        remote = agent.retrieve_session()
        echo(f"  remote session {remote['id']} ({remote['status']}), usage {remote['usage']}")
        ctx.close()  # this process lets go; a fresh one continues the same remote session
        env = {**os.environ, "ANTHROPIC_API_KEY": api_key}
        if base_url:
            env["ANTHROPIC_BASE_URL"] = base_url
        subprocess.run(  # noqa: S603 - our own module, our own arguments
            [
                sys.executable,
                "-m",
                "praisondb.demo.managed",
                ctx.database_url,
                ctx.analytics_url,
                SESSION_ID,
            ],
            check=True,
            env=env,
        )
        db = ctx.db
        session = db.session(SESSION_ID)
        _show(echo, db, SESSION_ID, "the managed conversation, as stored:")
        runs = db.runs.list(SESSION_ID)
        tokens = sum(r.input_tokens + r.output_tokens for r in runs)
        echo(f"  {len(runs)} runs recorded, {tokens} tokens in total")

        session.state["resolution"] = "replacement"
        checkpoint = session.checkpoint("before-refund")
        echo(f"\ncheckpoint {checkpoint.label!r} at message {checkpoint.seq}")
        session.add_user("Actually, I would rather have a refund.")
        session.add_assistant("Understood: a refund for order #1042 is on its way.")
        session.state["resolution"] = "refund"
        branch = session.fork(checkpoint)
        branch.add_user("Keep the replacement, thanks!")
        echo(f"branch {branch.id} forked at message {checkpoint.seq}:")
        _show(echo, db, branch.id, "  the branch:")
        kept = session.restore(checkpoint)
        echo(f"restored {SESSION_ID!r} to {checkpoint.label!r}: state {session.state.to_dict()}")
        if kept is not None:
            echo(
                f"  the rolled-back turn is kept in branch {kept.id} ({len(kept.history())} messages)"
            )
        echo(f"  branches of {SESSION_ID!r}: {[b.id for b in session.branches()]}")
        agent.close()


def resume(database_url: str, analytics_url: str, session_id: str) -> None:
    """The second process: same local session, same remote session, one more turn."""
    with PraisonDB(database_url, analytics_url=analytics_url) as db:
        agent = ManagedAgent(config=CONFIG, db=db, session_id=session_id)
        remote = agent.retrieve_session()
        print(f"second process resumed remote session {remote['id']}", flush=True)
        prompt = "Can you ship a replacement instead?"
        print(f"  user      {prompt}", flush=True)
        print(f"  agent     {agent.run(prompt)}", flush=True)
        agent.close()


if __name__ == "__main__":
    resume(sys.argv[1], sys.argv[2], sys.argv[3])
