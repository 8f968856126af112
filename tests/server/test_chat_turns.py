"""Chats with one session take turns (issue 13): on one ``praisondb serve`` process and
across processes sharing a store, the second chat waits for the first one's reply to be
stored, its agent sees that reply, a turn longer than the lease TTL keeps the lease, a
chat that waits too long is refused with a typed error and nothing stored, and a server
killed mid-turn blocks the session only until its lease lapses.

The served agents (``tests/server/served_agents.py``) run until this test creates their
``go-MESSAGE`` file, and say when they started: nothing here waits for a fixed time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from praisondb import (
    AsyncRemoteSession,
    BackendUnavailable,
    ConfigError,
    LockTimeout,
    PraisonDB,
    RemoteSession,
)
from praisondb.cli import cli
from praisondb.core.lock_names import LOCK_SCOPE, session_lock_name
from praisondb.model import StateEntry
from praisondb.server.turns import ChatTurns
from tests.conftest import private_url
from tests.server.served_agents import SIGNAL_DIR_ENV
from tests.server.serving import Server
from tests.waiting import eventually

AGENTS = (
    "--agent", "waiting=tests.server.served_agents:waiting",
    "--agent", "waiting_async=tests.server.served_agents:waiting_async",
)  # fmt: skip
WAITS = "a chat waits for its session's turn"
TIMEOUT = 60.0


@pytest.fixture
def signals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The folder the served agents signal through (servers inherit the variable)."""
    folder = tmp_path / "signals"
    folder.mkdir()
    monkeypatch.setenv(SIGNAL_DIR_ENV, str(folder))
    return folder


@pytest.fixture(params=["sqlite", "postgres"])
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A private store of each kind several server processes share."""
    yield from private_url(request.param, tmp_path_factory)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'chats.db'}"


@pytest.fixture
def servers(tmp_path: Path, signals: Path) -> Iterator[Callable[..., Server]]:
    """``start(url, *args)``: a ``praisondb serve`` process serving the test agents."""
    started: list[Server] = []

    def start(url: str, *args: str) -> Server:
        server = Server(url, tmp_path / f"server-{len(started)}.log", inherit=False)
        server.args = (*AGENTS, *args)
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.close()


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(4) as executor:
        yield executor


def _chat(server: Server, session_id: str, message: str, agent: str = "waiting") -> str:
    with RemoteSession(f"{server.base_url}/agents/{agent}", session_id) as s:
        return s.chat(message)


def _history(server: Server, session_id: str) -> list[tuple[str, object]]:
    with RemoteSession(f"{server.base_url}/agents/waiting", session_id) as s:
        return [(m.role, m.content) for m in s.history()]


def _start_turn(
    pool: ThreadPoolExecutor,
    signals: Path,
    server: Server,
    session_id: str,
    message: str,
    agent: str = "waiting",
) -> Future[str]:
    """Send a chat from another thread and wait until its agent runs (its prompt stored)."""
    reply = pool.submit(_chat, server, session_id, message, agent)
    eventually(
        lambda: (signals / f"started-{message}").exists() or reply.done(), TIMEOUT, "turn start"
    )
    assert not reply.done(), reply.result()
    return reply


def _waiting(server: Server) -> bool:
    return WAITS in server.log.read_text(errors="replace")


def _go(signals: Path, *messages: str) -> None:
    for message in messages:
        (signals / f"go-{message}").touch()


def _in_turns(first: str, second: str) -> list[tuple[str, object]]:
    one = f"{first} saw nothing"
    return [
        ("user", first),
        ("assistant", one),
        ("user", second),
        ("assistant", f"{second} saw {one}"),
    ]


@pytest.mark.parametrize("agent", ["waiting", "waiting_async"])
def test_two_chats_on_one_server_take_turns(
    agent: str,
    servers: Callable[..., Server],
    sqlite_store: str,
    signals: Path,
    pool: ThreadPoolExecutor,
) -> None:
    server = servers(sqlite_store)
    first = _start_turn(pool, signals, server, "one", "u1", agent)
    second = pool.submit(_chat, server, "one", "u2", agent)
    eventually(lambda: _waiting(server), TIMEOUT, "the second chat waiting")
    assert _history(server, "one") == [("user", "u1")]  # u2 not stored while u1 runs
    assert not (signals / "started-u2").exists()
    _go(signals, "u1", "u2")
    assert first.result(TIMEOUT) == "u1 saw nothing"
    assert second.result(TIMEOUT) == "u2 saw u1 saw nothing"  # its agent saw reply a1
    assert _history(server, "one") == _in_turns("u1", "u2")


def test_two_chats_on_two_servers_sharing_a_store_take_turns(
    servers: Callable[..., Server], store: str, signals: Path, pool: ThreadPoolExecutor
) -> None:
    a, b = servers(store), servers(store)
    first = _start_turn(pool, signals, a, "shared", "u1")
    second = pool.submit(_chat, b, "shared", "u2")
    eventually(lambda: _waiting(b), TIMEOUT, "the chat on the second server waiting")
    assert _history(b, "shared") == [("user", "u1")]
    _go(signals, "u1", "u2")
    assert first.result(TIMEOUT) == "u1 saw nothing"
    assert second.result(TIMEOUT) == "u2 saw u1 saw nothing"
    assert _history(a, "shared") == _in_turns("u1", "u2")


def _lease(db: PraisonDB, session_id: str) -> StateEntry | None:
    return db.state.get_entry(session_lock_name(session_id), scope=LOCK_SCOPE)


def test_a_turn_longer_than_the_lease_keeps_it(
    servers: Callable[..., Server], sqlite_store: str, signals: Path, pool: ThreadPoolExecutor
) -> None:
    a = servers(sqlite_store, "--chat-lease", "3")
    b = servers(sqlite_store, "--chat-lease", "3", "--chat-wait", "120")
    first = _start_turn(pool, signals, a, "long", "u1")
    second = pool.submit(_chat, b, "long", "u2")
    with PraisonDB(sqlite_store) as db:
        taken = _lease(db, "long")
        assert taken is not None and isinstance(taken.value, dict)
        began = time.monotonic()
        # renewed every third of the TTL: four renewals make a turn over 3 s long
        eventually(
            lambda: (held := _lease(db, "long")) is not None and held.version >= taken.version + 4,
            TIMEOUT,
            "four renewals",
        )
        assert time.monotonic() - began > 3.0  # the turn has outlived one lease TTL
        held = _lease(db, "long")
        assert held is not None and isinstance(held.value, dict)
        assert held.value["owner"] == taken.value["owner"]  # still the first chat's
        assert held.value["until"] > time.time()
    assert _waiting(b) and not second.done()
    assert _history(b, "long") == [("user", "u1")]
    _go(signals, "u1", "u2")
    assert first.result(TIMEOUT) == "u1 saw nothing"
    assert second.result(TIMEOUT) == "u2 saw u1 saw nothing"
    assert _history(a, "long") == _in_turns("u1", "u2")


def test_a_chat_that_waits_too_long_gets_a_typed_error_and_stores_nothing(
    servers: Callable[..., Server], sqlite_store: str, signals: Path, pool: ThreadPoolExecutor
) -> None:
    server = servers(sqlite_store, "--chat-wait", "0.5")
    first = _start_turn(pool, signals, server, "busy", "u1")
    url = f"{server.base_url}/agents/waiting"
    raw = httpx.post(f"{url}/sessions/busy/chat", json={"message": "u2"}, timeout=TIMEOUT)
    assert raw.status_code == 409
    assert raw.json()["error"] == "LockTimeout"
    assert "--chat-wait" in raw.json()["detail"]
    assert int(raw.headers["Retry-After"]) >= 1
    with RemoteSession(url, "busy") as s, pytest.raises(LockTimeout, match="busy") as refused:
        s.chat("u3")
    assert refused.value.retry_after is not None and refused.value.retry_after >= 1

    async def refused_async() -> None:
        async with AsyncRemoteSession(url, "busy") as s:
            await s.chat("u4")

    with pytest.raises(LockTimeout, match="--chat-wait"):
        asyncio.run(refused_async())
    assert not any((signals / f"started-{m}").exists() for m in ("u2", "u3", "u4"))
    _go(signals, "u1")
    assert first.result(TIMEOUT) == "u1 saw nothing"
    assert _history(server, "busy") == [("user", "u1"), ("assistant", "u1 saw nothing")]
    with PraisonDB(sqlite_store) as db:
        assert len(db.runs.list("busy")) == 1  # no run for a refused chat either


def test_a_server_killed_mid_turn_blocks_the_session_only_until_its_lease_lapses(
    servers: Callable[..., Server], store: str, signals: Path, pool: ThreadPoolExecutor
) -> None:
    a = servers(store, "--chat-lease", "3")
    b = servers(store, "--chat-lease", "3")
    lost = _start_turn(pool, signals, a, "crash", "u1")
    a.stop(kill=True)  # SIGKILL: the lease is never released
    with pytest.raises(BackendUnavailable):
        lost.result(TIMEOUT)
    _go(signals, "u2")
    began = time.monotonic()
    assert _chat(b, "crash", "u2") == "u2 saw nothing"  # u1's turn never replied
    assert time.monotonic() - began < 30  # within the default --chat-wait
    assert _waiting(b)  # it did wait for the dead server's lease
    assert _history(b, "crash") == [("user", "u1"), ("user", "u2"), ("assistant", "u2 saw nothing")]


@pytest.mark.parametrize(("wait", "lease"), [(-1.0, 15.0), (30.0, 0.5), (30.0, 4000.0)])
def test_turn_settings_out_of_range_are_config_errors(wait: float, lease: float) -> None:
    with pytest.raises(ConfigError, match="--chat-"):
        ChatTurns(wait=wait, lease=lease)


def test_serve_refuses_a_lease_shorter_than_a_second(sqlite_store: str) -> None:
    result = CliRunner().invoke(
        cli, ["serve", "--database-url", sqlite_store, "--chat-lease", "0.5"]
    )
    assert result.exit_code == 2
    assert "--chat-lease" in result.output
