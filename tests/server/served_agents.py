"""Agents that tests serve with ``praisondb serve --agent NAME=tests.server.served_agents:ATTR``."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from praisondb import ManagedAgent, ManagedConfig
from praisondb.demo.fake_server import FAKE_API_KEY

FAKE_URL_ENV = "SERVED_FAKE_ANTHROPIC_URL"


def echo(session: Any, message: str) -> str:
    """Answers with how many messages the session held when it heard ``message``: a
    conversation resumed elsewhere keeps counting."""
    return f"echo #{len(session.history())}: {message}"


async def shout(session: Any, message: str) -> str:
    return message.upper()


def _managed() -> ManagedAgent | None:
    """A ManagedAgent on the local fake managed-agents server, writing to the server's
    own database (the env of the server process names both)."""
    url = os.environ.get(FAKE_URL_ENV)
    if not url:
        return None
    return ManagedAgent(
        config=ManagedConfig(model="claude-sonnet-4-5", system="Be brief.", name="served"),
        api_key=FAKE_API_KEY,
        db=os.environ["PRAISONDB_DATABASE_URL"],
        base_url=url,
    )


support = _managed()


SIGNAL_DIR_ENV = "SERVED_SIGNAL_DIR"
"""A directory the test and the server's agents signal through: the agent touches
``started-MESSAGE`` and answers once the test has made ``go-MESSAGE``."""
SIGNAL_TIMEOUT = 120.0


def _seen(session: Any) -> str:
    """The reply the agent saw before its own turn (the last stored assistant message)."""
    replies = [m.content for m in session.history() if m.role == "assistant"]
    return str(replies[-1]) if replies else "nothing"


def _signals(message: str) -> Path:
    """Say this turn started; the file whose appearance ends it."""
    folder = Path(os.environ[SIGNAL_DIR_ENV])
    (folder / f"started-{message}").touch()
    return folder / f"go-{message}"


def waiting(session: Any, message: str) -> str:
    """Runs until the test says go (a turn as long as the test wants), then answers
    with the reply it saw: the next turn must see this one's."""
    go = _signals(message)
    deadline = time.monotonic() + SIGNAL_TIMEOUT
    while not go.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {go.name} within {SIGNAL_TIMEOUT} s")
        time.sleep(0.005)  # the polling interval, not a synchronisation
    return f"{message} saw {_seen(session)}"


async def waiting_async(session: Any, message: str) -> str:
    """:func:`waiting` as an ``async def`` agent, awaited on the server's event loop."""
    go = _signals(message)
    deadline = time.monotonic() + SIGNAL_TIMEOUT
    while not go.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {go.name} within {SIGNAL_TIMEOUT} s")
        await asyncio.sleep(0.005)  # the polling interval, not a synchronisation
    return f"{message} saw {await asyncio.to_thread(_seen, session)}"
