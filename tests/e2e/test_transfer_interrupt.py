"""Ctrl-C during ``praisondb copy``: it says a re-run resumes, exits 130, and the re-run's
note says truly how far the interrupted copy got, with one worker or several."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from praisondb import PraisonDB, transfer
from praisondb.model import Message, SessionInfo
from praisondb.stores.base import SessionQuery
from tests.backends import BACKENDS
from tests.conftest import selected_backends
from tests.e2e.transfer_helpers import (  # noqa: F401 - the `stores` fixture
    Stores,
    stores_fixture,
)

SESSIONS = 300
PER_SESSION = 4
USER = "ctrl-c-user"
NOTE = re.compile(
    r"resuming an interrupted copy: at least ([\d,]+) session\(s\) were finished before it "
    r"stopped"
)
ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "interrupted_target" in metafunc.fixturenames:
        names = [n for n in selected_backends(metafunc.config) if BACKENDS[n].multi_process]
        metafunc.parametrize("interrupted_target", names)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('ctrl-c') / 'source.db'}"
    with PraisonDB(url) as db:
        for s in range(SESSIONS):
            sid = f"c-{s:04d}"
            db.conversations.put_session(SessionInfo(sid, user_id=USER))
            db.conversations.put_messages(
                sid,
                [
                    Message(sid, "user", f"m{i}", id=f"{sid}-{i}", seq=i)
                    for i in range(1, PER_SESSION + 1)
                ],
            )
    return url


def _copy(source: str, target: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "praisondb", "copy", source, target, *extra]


def _sessions(db: PraisonDB) -> list[SessionInfo]:
    return db.conversations.list_sessions(SessionQuery(user_id=USER, limit=1000)).items


def _ctrl_c_once_writing(argv: list[str], db: PraisonDB) -> subprocess.CompletedProcess[str]:
    """Start the copy, wait until a session is complete in the target, then send SIGINT."""
    proc = subprocess.Popen(
        argv, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while not any(s.last_seq == PER_SESSION for s in _sessions(db)):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the copy never started writing"
            time.sleep(0.01)  # polling interval, not synchronisation
        assert proc.poll() is None, "the copy finished before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


@pytest.mark.parametrize("workers", [1, 4])
def test_ctrl_c_says_a_rerun_resumes_and_the_rerun_says_how_far_it_got(
    stores: Stores, interrupted_target: str, source: str, workers: int
) -> None:
    key = f"{interrupted_target}#ctrl-c-{workers}"
    target_url, target = stores.url(key), stores.db(key)
    stopped = _ctrl_c_once_writing(
        # batch size 1: every message is its own write, so the copy lasts long enough to stop
        _copy(source, target_url, "--workers", str(workers), "--batch-size", "1", "--no-verify"),
        target,
    )
    assert stopped.returncode == 130, stopped.stderr
    assert "run the same command again to resume where it stopped" in stopped.stderr
    assert "aborted" not in stopped.stderr and "Traceback" not in stopped.stderr

    finished = [s for s in _sessions(target) if s.last_seq == PER_SESSION]
    assert 0 < len(finished) < SESSIONS  # interrupted half-way, not before or after

    again = subprocess.run(
        _copy(source, target_url, "--workers", str(workers), "--json"),
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    report = orjson.loads(again.stdout)
    assert report["resumed"] is True
    (note,) = [n for n in report["notes"] if n.startswith("resuming")]
    assert "None" not in note
    match = NOTE.search(note)
    assert match, note
    counted = int(match.group(1).replace(",", ""))
    # "at least": each worker may have written a session's last batch and been stopped
    # before counting it, so up to one session per worker lands uncounted, never more
    assert len(finished) - workers <= counted <= len(finished), note
    if workers == 1:
        assert re.search(r"last batch written: session 'c-\d{4}' up to seq \d+", note), note
    else:  # several sessions were in flight: naming one would mislead
        assert "last batch" not in note
    assert report["verify"]["ok"] is True
    assert sum(s.message_count for s in _sessions(target)) == SESSIONS * PER_SESSION
    # verified above (report["verify"]): the full re-run need not verify a third time
    assert transfer.copy(source, target_url, full=True, verify=False).messages_copied == 0
