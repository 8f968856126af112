"""A copy killed with SIGKILL finishes on re-run; a live source loses nothing."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from praisondb import PraisonDB, transfer
from praisondb.model import Message, SessionInfo
from praisondb.stores.base import BulkSessionLoader, SessionQuery
from praisondb.transfer import CURSOR_SCOPE_PREFIX
from tests.backends import BACKENDS
from tests.conftest import selected_backends
from tests.e2e.transfer_helpers import (  # noqa: F401 - the `stores` fixture
    Stores,
    stores_fixture,
)

SESSIONS = 40
PER_SESSION = 400


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "persistent_target" in metafunc.fixturenames:
        names = [n for n in selected_backends(metafunc.config) if BACKENDS[n].multi_process]
        metafunc.parametrize("persistent_target", names)


@pytest.fixture(scope="module")
def big_source(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite file large enough that a copy in batches of 20 takes well over a second."""
    path = tmp_path_factory.mktemp("big") / "source.db"
    url = f"sqlite:///{path}"
    with PraisonDB(url, auto_migrate=True) as db:
        for s in range(SESSIONS):
            sid = f"big-{s:03d}"
            db.conversations.put_session(SessionInfo(sid, user_id="big-user", agent="bench"))
            db.conversations.put_messages(
                sid,
                [
                    Message(
                        sid, "user", f"message {i} " + "x" * 200, {"i": i}, id=f"{sid}-{i}", seq=i
                    )
                    for i in range(1, PER_SESSION + 1)
                ],
            )
        db.state.set("flag", True, scope="app")
    return url


SMALL_SESSIONS = 1500
SMALL_PER_SESSION = 4


@pytest.fixture(scope="module")
def small_source(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Many small sessions: a bulk-capable target takes them in whole-session batches."""
    path = tmp_path_factory.mktemp("small") / "source.db"
    url = f"sqlite:///{path}"
    with PraisonDB(url, auto_migrate=True) as db:
        loader = db.conversations
        assert isinstance(loader, BulkSessionLoader)
        items = []
        for s in range(SMALL_SESSIONS):
            sid = f"small-{s:05d}"
            items.append(
                (
                    SessionInfo(sid, user_id="small-user", agent="bench"),
                    [
                        Message(sid, "user", f"m{i} " + "y" * 50, {"i": i}, id=f"{sid}-{i}", seq=i)
                        for i in range(1, SMALL_PER_SESSION + 1)
                    ],
                )
            )
            if len(items) == 500:
                loader.put_session_batch(items)
                items = []
        loader.put_session_batch(items)
    return url


def _copy_argv(source: str, target: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "praisondb.cli", "copy", source, target, "--quiet", *extra]


def _kill_once_writing(
    argv: list[str], env: dict[str, str], writing: Callable[[], bool], max_delay: float
) -> None:
    """Start a copy, wait until it has written something, then SIGKILL it at a random moment."""
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not writing():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the copy never started writing"
            time.sleep(0.02)  # polling interval, not synchronisation
        time.sleep(random.uniform(0.0, max_delay))  # a random kill moment: fault injection
        assert proc.poll() is None, "the copy finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL


def _all_sessions(db: PraisonDB, user_id: str) -> list[SessionInfo]:
    found: list[SessionInfo] = []
    cursor = None
    while True:
        page = db.conversations.list_sessions(
            SessionQuery(user_id=user_id, limit=500, cursor=cursor)
        )
        found += page.items
        if not page.next_cursor:
            return found
        cursor = page.next_cursor


def _count(db: PraisonDB, user_id: str) -> tuple[int, int]:
    store = db.conversations
    page = store.list_sessions(SessionQuery(user_id=user_id, limit=1000))
    return len(page.items), sum(store.count_messages(s.id) for s in page.items)


@pytest.mark.slow
def test_kill_9_then_resume(
    stores: Stores, persistent_target: str, big_source: str, tmp_path: Path
) -> None:
    target_url = stores.url(f"{persistent_target}#kill")
    target = stores.db(f"{persistent_target}#kill")
    args = ["--batch-size", "10", "--no-verify", "--auto-migrate"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    _kill_once_writing(
        _copy_argv(big_source, target_url, *args),
        env,
        lambda: _count(target, "big-user")[1] > 0,
        max_delay=0.4,
    )

    cursor = [
        e for e in target.state_store.list_entries() if e.scope.startswith(CURSOR_SCOPE_PREFIX)
    ]
    assert cursor and cursor[0].value["status"] == "running"  # killed before it finished

    # --no-verify: the transfer.verify below is the check (the CLI's would be the same one)
    again = subprocess.run(
        _copy_argv(big_source, target_url, "--batch-size", "20", "--json", "--no-verify"),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert '"resumed": true' in again.stdout
    assert _count(target, "big-user") == (SESSIONS, SESSIONS * PER_SESSION)
    with PraisonDB(big_source) as source:
        report = transfer.verify(source, target)
        assert report.ok, report.differences
        assert report.sessions_checked >= SESSIONS
    rerun = transfer.copy(big_source, target_url, full=True, verify=False)  # verified above
    assert rerun.messages_copied == 0 and rerun.sessions_created == 0


@pytest.mark.slow
def test_kill_9_then_resume_whole_session_batches(
    stores: Stores, persistent_target: str, small_source: str
) -> None:
    """Killed between bulk transactions: no session is half there, and a re-run finishes."""
    key = f"{persistent_target}#bulk-kill"
    target_url, target = stores.url(key), stores.db(key)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    argv = _copy_argv(small_source, target_url, "--batch-size", "4", "--no-verify")
    _kill_once_writing(
        [*argv, "--auto-migrate"],
        env,
        lambda: bool(
            target.conversations.list_sessions(SessionQuery(user_id="small-user", limit=1)).items
        ),
        max_delay=0.3,
    )
    present = _all_sessions(target, "small-user")
    assert 0 < len(present) < SMALL_SESSIONS
    counts = {info.id: target.conversations.count_messages(info.id) for info in present}
    if isinstance(target.conversations, BulkSessionLoader):  # whole sessions or nothing
        assert set(counts.values()) == {SMALL_PER_SESSION}
        assert {info.last_seq for info in present} == {SMALL_PER_SESSION}
    else:  # per-session path: at most the one session in flight is partial
        assert sum(c != SMALL_PER_SESSION for c in counts.values()) <= 1

    again = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(_all_sessions(target, "small-user")) == SMALL_SESSIONS
    report = transfer.verify(small_source, target, user_id="small-user")
    assert report.ok, report.differences
    assert report.sessions_checked == SMALL_SESSIONS


def test_live_source_keeps_everything_that_was_there(stores: Stores, uid: str) -> None:
    """Appends during the copy: the copy has all that existed at its start; a re-run the rest."""
    source, target = stores.db("sqlite#live-src"), stores.db("sqlite#live-dst")
    user = f"live-{uid}"
    sids = [f"{uid}-live-{i}" for i in range(4)]
    for sid in sids:
        source.sessions.create(sid, user_id=user)
        source.messages.extend(sid, [{"role": "user", "content": f"m{i}"} for i in range(300)])
    at_start = {sid: source.messages.list(sid) for sid in sids}
    stop = threading.Event()
    appended: list[int] = []

    def writer() -> None:
        while not stop.is_set():
            for sid in sids:
                source.messages.append(sid, "assistant", "live")
                appended.append(1)
            time.sleep(0.001)  # paces the live writer (load), not synchronisation

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        report = transfer.copy(source, target, user_id=user, batch_size=25)
    finally:
        stop.set()
        thread.join()
    assert appended, "the writer never ran during the copy"
    assert report.verify is not None and report.verify.ok, report.verify
    for sid, messages in at_start.items():
        copied = target.messages.list(sid, before_seq=messages[-1].seq + 1)
        assert copied == messages
    assert not transfer.verify(source, target, user_id=user).ok  # strict: the source moved on
    assert transfer.verify(source, target, user_id=user, live=True).ok

    follow_up = transfer.copy(source, target, user_id=user)
    assert follow_up.incremental_since is not None and follow_up.messages_copied > 0
    assert transfer.verify(source, target, user_id=user).ok
    for sid in sids:
        assert target.messages.count(sid) == source.messages.count(sid)


def test_workers_copy_the_same(stores: Stores, big_source: str) -> None:
    target = PraisonDB("memory://")
    report = transfer.copy(big_source, target, workers=4, batch_size=97)
    assert report.verify is not None and report.verify.ok
    assert report.sessions_created == SESSIONS and report.messages_copied == SESSIONS * PER_SESSION
    assert report.state_copied == 1
    assert target.state.get("flag") is True
