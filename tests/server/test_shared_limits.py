"""Rate limits shared by server processes through the state store (praisondb/server/limits.py)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from praisondb import PraisonDB
from praisondb.server.auth import Authenticator, RateLimiter
from praisondb.server.keys import KeyStore
from praisondb.server.limits import LIMIT_SCOPE, SharedRateLimiter, slice_of, window_of
from tests.backends import redis_backend
from tests.server.serving import serve


class Counted:
    """The real state store, counting its ``incr`` calls (the store writes of leases)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.incrs = 0

    def incr(self, *args: Any, **kwargs: Any) -> int:
        self.incrs += 1
        value: int = self.store.incr(*args, **kwargs)
        return value


def test_windows_and_slices() -> None:
    assert window_of(20.0) == (1.0, 20)
    assert window_of(2.5) == (1.0, 2)  # whole requests per window
    assert window_of(0.1) == (10.0, 1)
    assert window_of(1 / 60) == (60.0, 1)
    assert [slice_of(b) for b in (1, 8, 9, 100)] == [1, 1, 2, 13]


def test_two_processes_share_one_budget_per_window(tmp_path: Path) -> None:
    with PraisonDB(f"sqlite:///{tmp_path}/limits.db", auto_migrate=True) as db:
        store = Counted(db.state_store)
        one, two = (SharedRateLimiter(store, RateLimiter()) for _ in range(2))  # type: ignore[arg-type]
        start = float(int(time.time()) + 60)  # a window's start (its counter expires later)
        waits = [(one if n % 2 else two).take("key", 16.0, now=start) for n in range(40)]
        assert waits.count(0.0) == 16  # the window's budget, across both
        assert all(w == pytest.approx(1.0) for w in waits if w)  # until the window ends
        assert store.incrs <= 16 // slice_of(16) + 2  # a write per slice, not per request
        refused = store.incrs
        assert one.take("key", 16.0, now=start + 0.5) > 0  # remembered: no store call
        assert store.incrs == refused
        later = [(one if n % 2 else two).take("key", 16.0, now=start + 1.0) for n in range(40)]
        assert later.count(0.0) == 16  # the next window, a fresh budget
        assert one.take("other", 16.0, now=start + 1.0) == 0.0  # budgets are per key
        assert db.state_store.list_entries(LIMIT_SCOPE)  # kept in the store, digested
        assert all("key" not in e.key for e in db.state_store.list_entries(LIMIT_SCOPE))


def test_each_process_keeps_its_own_bucket(tmp_path: Path) -> None:
    with PraisonDB(f"sqlite:///{tmp_path}/limits.db", auto_migrate=True) as db:
        limiter = SharedRateLimiter(db.state_store, RateLimiter())
        waits = [limiter.take("key", 2.0, now=500.0) for _ in range(3)]
        assert waits[:2] == [0.0, 0.0] and waits[2] == pytest.approx(0.5)


def test_memory_state_keeps_per_process_buckets() -> None:
    with PraisonDB("memory://") as db:
        assert Authenticator(db).shared is None
    with PraisonDB("sqlite:///:memory:", state_url="memory://") as db:
        assert Authenticator(db).shared is None


def test_a_failing_store_falls_back_to_the_local_bucket(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/keys.db"
    state = "redis://127.0.0.1:9/0"  # nothing listens on port 9
    with PraisonDB(url, state_url=state, state_options={"retry_attempts": 1}) as db:
        limiter = SharedRateLimiter(db.state_store, RateLimiter())
        waits = [limiter.take("key", 2.0, now=700.0) for _ in range(3)]
        assert waits[:2] == [0.0, 0.0] and waits[2] > 0


@contextlib.contextmanager
def _state_url(kind: str, tmp: Path) -> Iterator[str | None]:
    if kind == "sqlite":
        yield None  # the database's own state table, one file for both processes
        return
    try:
        with redis_backend(tmp) as url:
            yield url
    except OSError as exc:  # pragma: no cover - redis is one of the suite's services
        pytest.skip(f"redis is not running: {exc}")


RATE = 5
LOAD_SECONDS = 3.0


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_two_server_processes_grant_one_rate_together(kind: str, tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path}/served.db"
    with _state_url(kind, tmp_path) as state:
        with PraisonDB(database, state_url=state, auto_migrate=True) as db:
            key = KeyStore(db).create("busy", rate=float(RATE))
        args = ("--state-url", state) if state else ()
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        with (
            serve(database, tmp_path / "a", inherit=False, args=args) as first,
            serve(database, tmp_path / "b", inherit=False, args=args) as second,
        ):
            results: dict[str, list[httpx.Response]] = {"a": [], "b": []}
            began = time.monotonic()

            def hammer(name: str, base_url: str) -> None:
                headers = {"Authorization": f"Bearer {key}"}
                with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
                    while time.monotonic() - began < LOAD_SECONDS:
                        results[name].append(client.get("/sessions"))

            threads = [
                threading.Thread(target=hammer, args=("a", first.base_url)),
                threading.Thread(target=hammer, args=("b", second.base_url)),
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.monotonic() - began
    replies = results["a"] + results["b"]
    accepted = [r for r in replies if r.status_code == 200]
    refused = [r for r in replies if r.status_code == 429]
    assert len(accepted) + len(refused) == len(replies), {r.status_code for r in replies}
    # documented: at most rate * (T + 2 windows) in T seconds, whatever the processes;
    # per-process buckets would have let each process alone grant rate * (T + 1)
    assert len(replies) > 2 * RATE * (elapsed + 1), "too little load to test the limit"
    assert 1 <= len(accepted) <= RATE * (elapsed + 2), (len(accepted), len(replies), elapsed)
    assert all(int(r.headers["Retry-After"]) >= 1 for r in refused)
    assert all(r.json()["error"] == "BackendUnavailable" for r in refused)
    assert {n for n in results if any(r.status_code == 200 for r in results[n])} == {"a", "b"}
