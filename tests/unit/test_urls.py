"""URL detection picks the backend from the URL alone; redaction hides every secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from praisondb import ConfigError, PraisonDB
from praisondb.urls import parse_url, redact, redact_text


@pytest.mark.parametrize(
    ("url", "backend_name", "family"),
    [
        ("sqlite:///rel.db", "sql", "sqlite"),
        ("sqlite://", "sql", "sqlite"),
        ("postgresql://u@h/db", "sql", "postgresql"),
        ("postgres://u@h/db", "sql", "postgresql"),
        ("postgresql+psycopg://u@h/db", "sql", "postgresql"),
        ("mysql://root@h/db", "sql", "mysql"),
        ("mysql+pymysql://root@h/db", "sql", "mysql"),
        ("mariadb://root@h/db", "sql", "mysql"),
        ("mongodb://h:27017/db", "mongo", "mongodb"),
        ("mongodb+srv://u:p@cluster/db", "mongo", "mongodb"),
        ("redis://h:6379/0", "redis", "redis"),
        ("rediss://h:6380/0", "redis", "rediss"),
        ("unix:///run/redis.sock", "redis", "unix"),
        ("json:///var/data", "json", "json"),
        ("memory://", "memory", "memory"),
        ("MEMORY://", "memory", "memory"),
    ],
)
def test_conversation_urls(url: str, backend_name: str, family: str) -> None:
    parsed = parse_url(url)
    assert parsed.backend.name == backend_name
    assert parsed.family == family


@pytest.mark.parametrize(
    "url",
    [
        "clickhouse://h:8123/db",
        "clickhouses://h/db",
        "http://h:8123",
        "https://h:8443",
        "chdb:///tmp/a",
    ],
)
def test_analytics_urls(url: str) -> None:
    assert parse_url(url, "analytics").backend.name == "clickhouse"
    with pytest.raises(ConfigError, match="cannot serve conversations"):
        parse_url(url)


def test_paths(tmp_path: Path) -> None:
    assert parse_url("sqlite:///rel/x.db").path == "rel/x.db"
    assert parse_url("sqlite:////abs/x.db").path == "/abs/x.db"
    assert parse_url("json:///abs/dir").path == "/abs/dir"
    assert parse_url("json://rel/dir").path == "rel/dir"
    db_file = tmp_path / "conv.sqlite"
    assert parse_url(str(db_file)).path == str(db_file)
    assert parse_url(str(tmp_path / "x.db")).backend.name == "sql"
    assert parse_url(str(tmp_path)).backend.name == "json"
    assert parse_url(str(tmp_path)).path == str(tmp_path)


def test_unknown_scheme_lists_the_accepted_ones() -> None:
    with pytest.raises(ConfigError) as info:
        parse_url("oracle://scott:tiger@h/db")
    message = str(info.value)
    assert "oracle" in message and "postgresql://" in message and "mongodb://" in message
    assert "tiger" not in message
    with pytest.raises(ConfigError):
        parse_url("just-a-word")
    with pytest.raises(ConfigError):
        parse_url("")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://app:s3cr%40t@db:5432/app", "postgresql://app:***@db:5432/app"),
        ("redis://:hunter2@cache:6379/0", "redis://:***@cache:6379/0"),
        ("mongodb://u:pw@h1,h2/db?replicaSet=rs0", "mongodb://u:***@h1,h2/db?replicaSet=rs0"),
        ("clickhouse://h/db?password=pw&secure=1", "clickhouse://h/db?password=***&secure=1"),
        ("https://h:8443/?api_key=k&token=t", "https://h:8443/?api_key=***&token=***"),
        ("postgresql://nopass@h/db", "postgresql://nopass@h/db"),
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
    ],
)
def test_redaction(url: str, expected: str) -> None:
    assert redact(url) == expected


def test_secrets_never_reach_repr_or_errors() -> None:
    url = "postgresql://app:TopSecret@127.0.0.1:1/app"
    parsed = parse_url(url)
    assert "TopSecret" not in repr(parsed) and "TopSecret" not in str(parsed)
    db = PraisonDB(url, state_url="redis://:TopSecret@127.0.0.1:1/0")
    assert "TopSecret" not in repr(db)
    assert redact_text(f"connection to {url} failed for TopSecret", url) == (
        "connection to postgresql://app:***@127.0.0.1:1/app failed for ***"
    )


def test_redact_text_scrubs_query_secrets_with_the_password() -> None:
    url = "clickhouse://app:Pw0rd@db:8123/x?password=Q-secret&token=T%2Bok&db=x"
    text = f"cannot reach {url}; the driver said password=Q-secret, token T+ok, user app:Pw0rd"
    scrubbed = redact_text(text, url)
    for secret in ("Pw0rd", "Q-secret", "T+ok", "T%2Bok"):
        assert secret not in scrubbed
    assert "clickhouse://app:***@db:8123/x?password=***&token=***&db=x" in scrubbed


def test_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    from praisondb.stores import load_backend_class

    real_import = builtins.__import__

    def no_pymongo(name: str, *args: object, **kwargs: object) -> object:
        if name == "pymongo" or name.startswith("pymongo."):
            raise ModuleNotFoundError("No module named 'pymongo'", name="pymongo")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    import sys

    monkeypatch.delitem(sys.modules, "praisondb.stores.mongo.store", raising=False)
    for mod in [m for m in sys.modules if m == "pymongo" or m.startswith("pymongo.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setattr(builtins, "__import__", no_pymongo)
    with pytest.raises(ConfigError, match=r"pip install 'praisondb\[mongo\]'"):
        load_backend_class(parse_url("mongodb://u:pw@h/db"))
