"""Imported by the agent-process server only (agent_kit.process_pool): runs the three
kinds of turn once, offline on SQLite, and loads every store class, so the lazy imports
of a first turn (~190 PraisonAI and OpenAI client modules, ~140 of a store) are done
before the server forks, instead of in every agent process."""

from __future__ import annotations

import os
import tempfile

from praisondb import PraisonDB
from praisondb.stores import load_backend_class
from praisondb.urls import parse_url
from tests.fakes.openai_server import FakeOpenAIServer, call, text
from tests.integrations.praisonai.agent_kit import turn


def _warm_up() -> None:
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    with tempfile.TemporaryDirectory() as scratch, FakeOpenAIServer() as server:
        os.chdir(scratch)
        os.environ.update(server.env())
        try:
            for scheme in ("postgresql", "mysql", "redis", "mongodb", "json", "memory"):
                load_backend_class(parse_url(f"{scheme}://placeholder"))
            with PraisonDB(f"sqlite:///{scratch}/warm.db") as db:
                for mode, replies in (
                    ("start", [text("ok")]),
                    ("stream", [call("weather", "call_w", city="Oslo"), text("ok")]),
                    ("astart", [text("ok")]),
                ):
                    server.script(*replies)
                    turn(db, "warm-up", mode, "hi")
        finally:
            os.chdir(saved_cwd)
            os.environ.clear()
            os.environ.update(saved_env)


_warm_up()
