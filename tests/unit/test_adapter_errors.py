"""DbSessionAdapter's error policy against a store that cannot be reached."""

from __future__ import annotations

import logging

import pytest

from praisondb import BackendUnavailable, ConfigError, DbSessionAdapter, PraisonDB, PraisonDBError

UNREACHABLE = "redis://:hunter2@127.0.0.1:1/0"


def test_a_failing_store_raises_a_typed_error_without_the_password() -> None:
    with DbSessionAdapter(UNREACHABLE) as adapter, pytest.raises(BackendUnavailable) as caught:
        adapter.add_message("s", "user", "hi")
    assert "hunter2" not in str(caught.value)


def test_warn_mode_logs_and_returns_false(caplog: pytest.LogCaptureFixture) -> None:
    with (
        caplog.at_level(logging.WARNING, logger="praisondb.adapter"),
        DbSessionAdapter(UNREACHABLE, on_error="warn") as adapter,
    ):
        assert adapter.add_message("s", "user", "hi") is False
        assert adapter.set_metadata("s", {"k": 1}) is False
        assert adapter.get_chat_history("s") == []
        assert adapter.get_session("s") is None
        assert adapter.get_metadata("s") == {}
    assert "add_message failed" in caplog.text and "hunter2" not in caplog.text


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ConfigError):
        DbSessionAdapter("memory://", on_error="ignore")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        DbSessionAdapter(42)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        DbSessionAdapter(PraisonDB("memory://"), pool_size=3)


def _bug(*args: object, **kwargs: object) -> None:
    raise TypeError("unsupported operand (a bug)")


def test_a_bug_is_not_reported_as_an_outage(monkeypatch: pytest.MonkeyPatch) -> None:
    """A TypeError from a bug is a non-transient PraisonDBError, never BackendUnavailable."""
    with DbSessionAdapter("memory://") as adapter:
        monkeypatch.setattr(adapter.db.messages, "append", _bug)
        with pytest.raises(PraisonDBError) as caught:
            adapter.add_message("s", "user", "hi")
    assert not isinstance(caught.value, BackendUnavailable)
    assert caught.value.transient is False
    assert "TypeError" in str(caught.value) and "not an outage" in str(caught.value)
    assert isinstance(caught.value.__cause__, TypeError)


def test_warn_mode_logs_a_bug_with_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    with (
        caplog.at_level(logging.WARNING, logger="praisondb.adapter"),
        DbSessionAdapter("memory://", on_error="warn") as adapter,
    ):
        adapter.db.messages.append = _bug  # type: ignore[method-assign]
        assert adapter.add_message("s", "user", "hi") is False
    (record,) = [r for r in caplog.records if "unexpected TypeError" in r.getMessage()]
    assert record.levelname == "ERROR" and record.exc_info is not None
