"""The first write of a fresh process (a cold object) is as atomic as any other.

Issue 15: on MongoDB the first write of a new ``PraisonDB`` object ran outside a
transaction, so a kill -9 between the counter bump and the insert left a session whose
``message_count``/``last_seq`` counted messages that were never stored, and a duplicate id
used up a seq. These tests kill fresh processes during their first ``extend`` at varied
moments (fault injection) and check the session after every kill.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import pytest

from praisondb import Conflict, PraisonDB
from tests.conformance.conftest import spawn_worker
from tests.waiting import POLL

BATCH = 50
PAD = 20_000  # ~1 MB per batch: the write lasts long enough for kills to land inside it
KILLS = 12


def _run_cold_extend(backend_url: str, session_id: str, face: str) -> float:
    """One undisturbed cold extend; returns how long the extend itself took."""
    proc = spawn_worker("cold-extend", backend_url, session_id, str(BATCH), str(PAD), face=face)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    lines = out.split()
    assert lines[0] == "ready" and lines[1] == "done", out
    return float(lines[2])


def _kill_during_first_extend(
    db: PraisonDB, backend_url: str, session_id: str, delay: float | None, face: str
) -> None:
    """Start a fresh process, wait for its 'ready' line, then kill -9 it during its write.

    With ``delay`` the kill lands that long after 'ready' (a moment chosen at random: fault
    injection, not synchronisation); without, it lands as soon as another reader sees the
    session change, the moment a write outside a transaction is half done.
    """
    proc = spawn_worker("cold-extend", backend_url, session_id, str(BATCH), str(PAD), face=face)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        if delay is not None:
            time.sleep(delay)  # a random kill moment: fault injection, not synchronisation
        else:
            deadline = time.monotonic() + 20
            while proc.poll() is None and time.monotonic() < deadline:
                if db.sessions.get(session_id).last_seq:
                    break
        proc.kill()
    finally:
        proc.kill()
        proc.communicate(timeout=30)


def _assert_whole(db: PraisonDB, session_id: str) -> int:
    """Counters match what is stored, seq is 1..n gap-free, the batch is all or nothing."""
    info = db.sessions.get(session_id)
    messages = db.messages.list(session_id)
    n = len(messages)
    assert n in (0, BATCH), f"a batch of {BATCH} left {n} messages"
    assert [m.seq for m in messages] == list(range(1, n + 1))
    assert [m.content for m in messages] == [f"c-{i} " + "x" * PAD for i in range(n)]
    assert (info.message_count, info.last_seq) == (n, n), (
        f"session says {info.message_count} messages, last_seq {info.last_seq}; {n} stored"
    )
    return n


def _settled_whole(db: PraisonDB, session_id: str, timeout: float = 10) -> int:
    """:func:`_assert_whole` once the killed process's last statement has settled.

    A statement (or COMMIT) the worker sent just before the kill still runs to its end on
    the server, and _assert_whole's two reads (session, then messages) are not one
    snapshot: a commit landing between them looks like a half write for a moment. A real
    half write stays, and fails here after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return _assert_whole(db, session_id)
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        time.sleep(POLL)  # the polling interval, not a synchronisation


def _cold_append(open_db: Callable[..., PraisonDB], backend_url: str, session_id: str) -> None:
    with open_db(backend_url) as cold:
        cold.messages.append(session_id, "user", "after the kill")


@pytest.mark.usefixtures("multi_process")
def test_kill_during_first_write_of_a_fresh_process_leaves_no_trace(
    db: PraisonDB, backend_url: str, uid: str, face: str, open_db: Callable[..., PraisonDB]
) -> None:
    """The worker process is of the test's face (a cold AsyncPraisonDB for ``async``)."""
    calibration = f"{uid}-cal"
    db.sessions.create(calibration)
    duration = _run_cold_extend(backend_url, calibration, face)
    assert _assert_whole(db, calibration) == BATCH
    rng = random.Random(uid)
    outcomes = []
    for k in range(KILLS):
        sid = f"{uid}-{k}"
        db.sessions.create(sid)
        # even kills: spread over the write's duration (and a little past it), jittered;
        # odd kills: the moment the session's counters move
        delay = duration * (k + rng.random()) / KILLS * 1.2 if k % 2 == 0 else None
        _kill_during_first_extend(db, backend_url, sid, delay, face)
        _settled_whole(db, sid)
        _cold_append(open_db, backend_url, sid)
        outcomes.append(_assert_whole_after_append(db, sid))
    # the kills really hit the write at least once: some batches were cut off entirely
    assert 0 in outcomes, f"no kill landed before the commit (extend took {duration:.4f}s)"


def _assert_whole_after_append(db: PraisonDB, session_id: str) -> int:
    """The cold append came right after the batch, or alone: returns the batch's size.

    The append, not the reads before it, decides how the killed write ended: a COMMIT the
    worker sent just before the kill may still land on a server after the reads saw
    nothing, but the append's own write waits for it (row lock, write conflict, file
    lock), so whatever the killed process left is settled under the append."""
    info = db.sessions.get(session_id)
    messages = db.messages.list(session_id)
    n = len(messages) - 1
    assert n in (0, BATCH), f"a batch of {BATCH} and one append left {n + 1} messages"
    assert [m.seq for m in messages] == list(range(1, n + 2))
    assert [m.content for m in messages] == [
        *(f"c-{i} " + "x" * PAD for i in range(n)),
        "after the kill",
    ]
    assert (info.message_count, info.last_seq) == (n + 1, n + 1)
    return n


@pytest.mark.usefixtures("multi_process")
def test_duplicate_id_on_a_cold_object_uses_up_no_seq(
    db: PraisonDB, backend_url: str, uid: str, open_db: Callable[..., PraisonDB]
) -> None:
    db.sessions.create(uid)
    first = db.messages.append(uid, "user", "first")
    with open_db(backend_url) as cold, pytest.raises(Conflict):
        cold.messages.extend(uid, [{"id": first.id, "role": "user", "content": "different"}])
    with open_db(backend_url) as cold:
        nxt = cold.messages.append(uid, "user", "second")
    assert nxt.seq == 2
    info = db.sessions.get(uid)
    assert (info.message_count, info.last_seq) == (2, 2)
