from __future__ import annotations

import pytest

from praisondb import BackendUnavailable
from praisondb.retry import Retry
from praisondb.urls import parse_url


def test_retries_transient_errors_then_reports_attempts_without_secrets() -> None:
    url = parse_url("postgresql://app:Hunter2Secret@db.internal:5432/app")
    calls = 0

    def flaky() -> int:
        nonlocal calls
        calls += 1
        raise ConnectionError(f"could not connect to {url.secret} (password Hunter2Secret)")

    with pytest.raises(BackendUnavailable) as info:
        Retry(attempts=3, base_delay=0.001).call(
            flaky, transient=lambda e: True, url=url, action="connect"
        )
    assert calls == 3
    assert info.value.attempts == 3
    message = str(info.value)
    assert "after 3 attempts" in message and "app:***@db.internal" in message
    assert "Hunter2Secret" not in message


def test_success_after_a_transient_failure_and_permanent_errors_pass_through() -> None:
    outcomes: list[BaseException | int] = [ConnectionError("blip"), 42]

    def once_flaky() -> int:
        item = outcomes.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item

    retry = Retry(attempts=3, base_delay=0.001)
    assert (
        retry.call(once_flaky, transient=lambda e: isinstance(e, ConnectionError), url="x://") == 42
    )

    def broken() -> int:
        raise ValueError("not transient")

    with pytest.raises(ValueError, match="not transient"):
        retry.call(broken, transient=lambda e: isinstance(e, ConnectionError), url="x://")


def test_backoff_is_bounded() -> None:
    retry = Retry(attempts=10, base_delay=0.1, max_delay=0.5)
    assert all(0 <= retry.backoff(n) <= 0.5 for n in range(1, 30))
