"""Remote agents through a real ``praisondb serve`` process: a conversation started here
is resumed and continued by another process (a second machine), on a plain agent and on
a ManagedAgent talking to the local managed-agents server."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from praisondb import (
    AsyncRemoteSession,
    BackendUnavailable,
    ConfigError,
    NotFound,
    PraisonDB,
    RemoteSession,
)
from praisondb.server.keys import KeyStore
from tests.fakes.anthropic_server import FakeManagedAgentsServer
from tests.server.served_agents import FAKE_URL_ENV
from tests.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Live:
    url: str
    database_url: str
    key: str
    other_tenant_key: str
    log: Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("live")
    database_url = f"sqlite:///{tmp}/server.db"
    with PraisonDB(database_url, auto_migrate=True) as db:
        key = KeyStore(db).create("agents", tenant="acme")
        other = KeyStore(db).create("others", tenant="globex")
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PRAISONDB_DATABASE_URL": database_url}
    with FakeManagedAgentsServer(step_delay=0.001) as fake:
        env[FAKE_URL_ENV] = fake.url
        log = tmp / "server.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    sys.executable, "-m", "praisondb", "serve", "--port", str(port),
                    "--require-keys", "--agent", "echo=tests.server.served_agents:echo",
                    "--agent", "shout=tests.server.served_agents:shout",
                    "--agent", "support=tests.server.served_agents:support",
                ],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
            url = f"http://127.0.0.1:{port}"
            try:
                eventually(lambda: _up(url) or process.poll() is not None, 30, "server start")
                assert process.poll() is None, log.read_text()
                yield Live(url, database_url, key, other, log)
            finally:
                process.terminate()
                process.wait(15)


def _second_machine(live: Live, agent: str, session_id: str, message: str) -> str:
    """Another process, knowing only the URL, the id and the key, continues the chat."""
    script = textwrap.dedent(
        f"""
        import praisondb
        with praisondb.RemoteSession(agent_url={live.url + "/agents/" + agent!r},
                                     session_id={session_id!r}) as s:
            print(s.chat({message!r}))
            print(len(s.history()))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PRAISONDB_API_KEY": live.key}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_second_process_resumes_and_continues_a_conversation(live: Live) -> None:
    agent_url = f"{live.url}/agents/echo"
    with RemoteSession(agent_url=agent_url, session_id="ticket-1", api_key=live.key) as here:
        assert here.chat("my order is late") == "echo #1: my order is late"
        assert here.chat("order 42") == "echo #3: order 42"
    there = _second_machine(live, "echo", "ticket-1", "any news?")
    assert there.splitlines() == ["echo #5: any news?", "6"]
    with RemoteSession(agent_url=agent_url, session_id="ticket-1", api_key=live.key) as back:
        history = back.history()
        assert [m.content for m in history] == [
            "my order is late", "echo #1: my order is late",
            "order 42", "echo #3: order 42",
            "any news?", "echo #5: any news?",
        ]  # fmt: skip
        assert [m.role for m in history[:2]] == ["user", "assistant"]
        assert {m.session_id for m in history} == {"ticket-1"}
        assert [m.content for m in back.history(last=1)] == ["echo #5: any news?"]
    # stored on the server, under the key's tenant: another tenant has no such session
    with RemoteSession(agent_url, "ticket-1", api_key=live.other_tenant_key) as stranger:
        with pytest.raises(NotFound):
            stranger.history()
        assert stranger.chat("hello") == "echo #1: hello"  # its own, fresh conversation


def test_a_managed_agent_is_served_and_remembers_across_processes(live: Live) -> None:
    agent_url = f"{live.url}/agents/support"
    with RemoteSession(agent_url=agent_url, session_id="case-7", api_key=live.key) as here:
        assert here.chat("hi") == "Echo: hi (turn 1 of this conversation)"
    there = _second_machine(live, "support", "case-7", "still there?")
    assert there.splitlines()[0] == "Echo: still there? (turn 2 of this conversation)"
    with PraisonDB(live.database_url) as db:  # the turns are in the server's store
        stored = [s.id for s in db.sessions.list(limit=100).items if s.id.endswith("case-7")]
        assert len(stored) == 1 and stored[0] != "case-7"  # namespaced for tenant acme
        contents = [m.content for m in db.messages.list(stored[0])]
        assert "hi" in contents and "still there?" in contents


def test_the_async_face_and_an_async_agent(live: Live) -> None:
    async def talk() -> tuple[str, int]:
        async with AsyncRemoteSession(f"{live.url}/agents/shout", api_key=live.key) as s:
            reply = await s.chat("quiet please")
            return reply, len(await s.history())

    assert asyncio.run(talk()) == ("QUIET PLEASE", 2)


def test_client_errors_are_typed(live: Live) -> None:
    wrong = RemoteSession(f"{live.url}/agents/echo", "s", api_key="pdb_wrong")
    with wrong, pytest.raises(ConfigError, match="PRAISONDB_API_KEY"):
        wrong.chat("hi")
    nobody = RemoteSession(f"{live.url}/agents/nobody", "s", api_key=live.key)
    with nobody, pytest.raises(NotFound, match="--agent nobody"):
        nobody.chat("hi")
    with RemoteSession(f"http://127.0.0.1:{_free_port()}/agents/echo", api_key=live.key) as s:
        with pytest.raises(BackendUnavailable, match="cannot reach"):
            s.chat("hi")
        assert live.key not in repr(s)
    with pytest.raises(ConfigError, match="http"):
        RemoteSession("ftp://x/agents/echo")


def test_serve_refuses_an_open_public_address(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    url = f"sqlite:///{tmp_path}/open.db"
    public = "0.0.0.0"  # noqa: S104 - the address serve must refuse to open
    for flags in (["--no-require-keys"], ["--require-keys", "--insecure-no-auth"]):
        done = subprocess.run(
            [sys.executable, "-m", "praisondb", "serve", "--database-url", url,
             "--auto-migrate", "--host", public, "--port", str(_free_port()), *flags],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert "insecure-no-auth" in done.stderr
