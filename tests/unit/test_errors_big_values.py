"""Messages over MySQL/MariaDB's max_allowed_packet are a ValidationError (never retried,
never "is the server up?") naming the limit, the size and how to raise it; PostgreSQL
stores 100 MB as it is."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from praisondb import Message, PraisonDB, SessionInfo, ValidationError
from praisondb.stores.sql import dialects as sql_dialects
from praisondb.urls import parse_url
from tests.backends import mysql_backend, postgres_backend

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def mysql_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PraisonDB]:
    with (
        mysql_backend(tmp_path_factory.mktemp("mysql")) as url,
        PraisonDB(url, auto_migrate=True) as db,
    ):
        yield db


@pytest.mark.parametrize("mib", [17, 20, 100])
def test_mysql_message_over_max_allowed_packet(
    mysql_db: PraisonDB, caplog: pytest.LogCaptureFixture, mib: int
) -> None:
    caplog.set_level(logging.WARNING, logger="praisondb")
    sid = f"big-{mib}"
    mysql_db.sessions.create(sid)
    with pytest.raises(ValidationError) as caught:
        mysql_db.messages.append(sid, "user", "x" * (mib * MIB))
    message = str(caught.value)
    assert "max_allowed_packet (16.0 MiB)" in message and f"{mib:.1f} MiB" in message, message
    assert "SET GLOBAL max_allowed_packet" in message and "reachable" not in message
    assert not [r for r in caplog.records if "retry" in r.getMessage()], "it was retried"
    assert mysql_db.messages.count(sid) == 0
    store = mysql_db.conversations
    with pytest.raises(ValidationError, match="max_allowed_packet"):
        store.put_messages(sid, [Message(sid, "user", "y" * (18 * MIB), seq=1)])
    with pytest.raises(ValidationError, match="max_allowed_packet"):
        store.put_session_batch(
            [(SessionInfo(id=f"{sid}-b"), [Message(f"{sid}-b", "user", "z" * 18 * MIB, seq=1)])]
        )
    mysql_db.messages.append(sid, "user", "fits")  # the connection is still fine
    assert [m.content for m in mysql_db.messages.list(sid)] == ["fits"]


def test_mysql_refusal_1153_is_a_validation_error() -> None:
    """The server's own refusal (a statement that slipped past the size check)."""
    import pymysql
    import sqlalchemy as sa

    url = parse_url("mysql://root@127.0.0.1/test")
    refused = pymysql.err.OperationalError(1153, "Got a packet bigger than 'max_allowed_packet'")
    error = sql_dialects.translate(sa.exc.OperationalError("INSERT", {}, refused), url)
    assert isinstance(error, ValidationError) and "max_allowed_packet" in str(error)
    assert not sql_dialects.is_retryable(error)


def test_postgresql_stores_100_mb(tmp_path: Path) -> None:
    with postgres_backend(tmp_path) as url, PraisonDB(url, auto_migrate=True) as db:
        db.sessions.create("huge")
        db.messages.append("huge", "user", "x" * (100 * MIB))
        (stored,) = db.messages.list("huge")
        assert stored.content == "x" * (100 * MIB)


@pytest.mark.parametrize("mib", [18, 100])
def test_mysql_state_value_over_max_allowed_packet(
    mysql_db: PraisonDB, caplog: pytest.LogCaptureFixture, mib: int
) -> None:
    caplog.set_level(logging.WARNING, logger="praisondb")
    with pytest.raises(ValidationError) as caught:
        mysql_db.state.set(f"big-{mib}", "x" * (mib * MIB))
    assert "max_allowed_packet (16.0 MiB)" in str(caught.value)
    assert not [r for r in caplog.records if "retry" in r.getMessage()], "it was retried"
    mysql_db.state.set(f"big-{mib}", "y" * (2 * MIB))  # under the limit: stored
    assert mysql_db.state.get(f"big-{mib}") == "y" * (2 * MIB)
