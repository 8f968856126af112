"""Waiting for a condition, never for a fixed time: the one polling loop of the suite."""

from __future__ import annotations

import time
from collections.abc import Callable

POLL = 0.005
"""How often a condition is checked: the wait ends at most this long after it holds."""


def eventually(condition: Callable[[], object], timeout: float = 10, what: str = "") -> None:
    """Return as soon as ``condition()`` is truthy; fail the test after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what or 'condition'} not met within {timeout} s"
        time.sleep(POLL)  # the polling interval, not a synchronisation
