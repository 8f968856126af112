"""Agents that tests serve with ``praisondb serve --agent NAME=tests.server.served_agents:ATTR``."""

from __future__ import annotations

import os
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
