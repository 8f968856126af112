"""session.lock(): an exclusive, expiring lease with a fencing token, on every backend."""

from __future__ import annotations

import threading
import time

import pytest

from praisondb import PraisonDB
from praisondb.core.locks import LeaseLost, LockTimeout
from tests.conformance.conftest import SESSION_WORKER, spawn_worker
from tests.conftest import FakeClock


def test_lock_is_exclusive_and_tokens_grow(db: PraisonDB, uid: str) -> None:
    s = db.session(uid)
    with s.lock(timeout=1) as first:
        assert first.held and first.token is not None
        with pytest.raises(LockTimeout):
            db.session(uid).lock(timeout=0).acquire()
        token = first.token
    assert not first.held
    with db.session(uid).lock(timeout=1) as second:
        assert second.token is not None and second.token > token


def test_lock_from_many_threads_serialises_critical_sections(db: PraisonDB, uid: str) -> None:
    s = db.session(uid)
    tokens: list[int] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(5):
                with db.session(uid).lock(timeout=30) as lease:
                    value = s.state.get("n", 0)
                    time.sleep(0.001)  # widens the read-modify-write window under test
                    s.state.set("n", value + 1)
                    assert lease.token is not None
                    tokens.append(lease.token)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert s.state.get("n") == 20
    assert len(set(tokens)) == 20


def test_expired_lease_is_taken_over_and_the_old_holder_learns_it(
    db: PraisonDB, uid: str, clock: FakeClock
) -> None:
    stale = db.session(uid).lock(timeout=0, ttl=0.2)
    stale.acquire()
    clock.advance(0.3)
    with db.session(uid).lock(timeout=1) as fresh:  # takes over the expired lease
        assert fresh.token is not None and stale.token is not None and fresh.token > stale.token
        with pytest.raises(LeaseLost):
            stale.extend()
    stale2 = db.session(uid).lock(timeout=0, ttl=0.2)
    stale2.acquire()
    clock.advance(0.3)
    db.session(uid).lock(timeout=1).acquire()
    with pytest.raises(LeaseLost):
        stale2.release()


def test_extend_keeps_the_lease(db: PraisonDB, uid: str, clock: FakeClock) -> None:
    lease = db.session(uid).lock(timeout=0, ttl=0.3)
    lease.acquire()
    token = lease.token
    clock.advance(0.2)
    lease.extend(1.0)
    clock.advance(0.2)
    with pytest.raises(LockTimeout):
        db.session(uid).lock(timeout=0).acquire()
    assert lease.token == token
    lease.release()


def test_session_exit_releases_its_locks(db: PraisonDB, uid: str) -> None:
    with db.session(uid) as s:
        s.lock(timeout=1).acquire()
    with db.session(uid).lock(timeout=0):  # free again
        pass


@pytest.mark.usefixtures("multi_process")
def test_lock_is_exclusive_across_processes(
    db: PraisonDB, backend_url: str, uid: str, face: str
) -> None:
    rounds, workers = 15, 3
    procs = [
        spawn_worker("lock", backend_url, uid, str(rounds), face=face, script=SESSION_WORKER)
        for _ in range(workers)
    ]
    tokens: list[int] = []
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        mine = [int(line) for line in out.split()]
        assert mine == sorted(mine)  # each holder sees growing tokens
        tokens.extend(mine)
    assert db.session(uid).state.get("counter") == rounds * workers  # no lost update
    assert len(set(tokens)) == rounds * workers  # every hold had its own fencing token
