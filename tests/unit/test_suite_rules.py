"""The test suite's own rules: a missing driver fails CI, time is moved rather than waited
for, waits poll a condition, and no backend module can skip itself at import."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from praisondb import PraisonDB, model
from tests.conftest import FakeClock, require_module
from tests.waiting import eventually

TESTS = Path(__file__).resolve().parents[1]


def test_a_missing_driver_fails_in_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PRAISONDB_REQUIRE_ALL_BACKENDS", raising=False)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI runs every backend"):
        require_module("praisondb_no_such_driver")
    monkeypatch.setenv("CI", "")
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        require_module("praisondb_no_such_driver")
    assert require_module("json").dumps([1]) == "[1]"


def test_no_module_skips_itself_on_a_missing_import() -> None:
    call = "importor" + "skip("  # not spelled out, or this file would match itself
    offenders = [
        str(path.relative_to(TESTS))
        for path in TESTS.rglob("*.py")
        if call in path.read_text(encoding="utf-8")
    ]
    assert offenders == [], f"use tests.conftest.require_module instead: {offenders}"


def test_sleeps_say_why() -> None:
    """A sleep is a polling interval, an injected fault or the behaviour under test, and
    its line says which; waiting for something is done with tests.waiting.eventually."""
    unexplained = [
        f"{path.relative_to(TESTS)}:{number}"
        for path in TESTS.rglob("*.py")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"\bsleep\(", line) and "#" not in line and path.name != Path(__file__).name
    ]
    assert unexplained == []


def test_the_clock_fixture_moves_expiry_forward(clock: FakeClock) -> None:
    before = model.utcnow()
    clock.advance(3600)
    assert (model.utcnow() - before).total_seconds() >= 3600
    with PraisonDB("memory://") as db:
        db.state.set("k", 1, ttl=10)
        lease = db.session("s").lock(timeout=0, ttl=10).acquire()
        clock.advance(11)
        assert db.state.get("k") is None and not lease.held
    with pytest.raises(AssertionError):
        clock.advance(-1)


def test_eventually_returns_once_true_and_fails_after_its_timeout() -> None:
    flips = iter([False, False, True])
    eventually(lambda: next(flips), 1)
    started = time.monotonic()
    with pytest.raises(AssertionError, match="never not met within"):
        eventually(lambda: False, 0.05, "never")
    assert time.monotonic() - started >= 0.05
