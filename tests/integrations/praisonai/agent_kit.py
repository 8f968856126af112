"""One turn of a real PraisonAI ``Agent`` on a praisondb database, the way an app runs it:
a new ``Agent`` per turn (so each turn resumes from the store), ``PraisonDB`` as its db.

Modes: ``start`` (``agent.start``), ``stream`` (``agent.start(stream=True)``, the path
that reports tool turns), ``astart``. :func:`in_new_process` runs a turn in a process of
its own, forked from a server that has already imported PraisonAI and the drivers and run
each kind of turn once (warm_up.py): a fresh interpreter spends ~2 s on those imports; the child opens its
own database and reaches the fake model named by ``OPENAI_BASE_URL``.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from praisonaiagents import Agent
from praisonaiagents.config.feature_configs import MemoryConfig

from praisondb import PraisonDB

MODES = ("start", "stream", "astart")


def weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def agent(db: PraisonDB, session_id: str) -> Agent:
    return Agent(
        name="guide",
        instructions="Answer briefly.",
        model="gpt-4o-mini",
        tools=[weather],
        output="silent",
        memory=MemoryConfig(db=db, session_id=session_id, user_id="u-ada"),
    )


def turn(db: PraisonDB, session_id: str, mode: str, prompt: str) -> Any:
    """Run one turn; returns the agent's reply."""
    a = agent(db, session_id)
    if mode == "start":
        return a.start(prompt)
    if mode == "stream":
        return "".join(a.start(prompt, stream=True))
    if mode == "astart":
        return asyncio.run(a.astart(prompt))
    raise ValueError(f"mode must be one of {MODES}, not {mode!r}")


PRELOAD = [
    __name__,
    "tests.integrations.praisonai.warm_up",
    "praisondb.stores.sql",
    "praisondb.stores.redis",
    "praisondb.stores.mongo",
    "praisondb.stores.jsonfiles",
    "sqlalchemy.dialects.postgresql.psycopg",
    "sqlalchemy.dialects.mysql.pymysql",
    "psycopg",
    "pymysql",
    "redis",
    "pymongo",
]


def turn_in_process(url: str, session_id: str, mode: str, prompt: str, env: dict[str, str]) -> Any:
    """One turn on a database this process opens (the body of :func:`in_new_process`)."""
    os.environ.update(env)
    os.chdir(env["PRAISONDB_TEST_CWD"])
    with PraisonDB(url) as db:
        return turn(db, session_id, mode, prompt)


def process_pool() -> ProcessPoolExecutor:
    """A pool that runs each task in a new process, forked from a preloaded server."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return ProcessPoolExecutor(1, mp_context=context, max_tasks_per_child=1)
