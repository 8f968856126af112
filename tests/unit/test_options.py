from __future__ import annotations

import pytest

from praisondb import ConfigError
from praisondb.options import (
    ABSENT,
    Option,
    OptionTable,
    as_bool,
    as_float,
    as_int,
    as_seconds,
    positive,
)
from praisondb.stores import open_analytics_sink, open_conversation_store
from praisondb.urls import parse_url


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("on", True),
        ("TRUE", True),
        ("1", True),
        (True, True),
        ("off", False),
        ("no", False),
        ("0", False),
        (False, False),
    ],
)
def test_as_bool(text: object, expected: bool) -> None:
    assert as_bool("fsync", text) is expected


def test_bad_values_name_the_option() -> None:
    with pytest.raises(ConfigError, match="option fsync must be true or false"):
        as_bool("fsync", "maybe")
    with pytest.raises(ConfigError, match="option lock_timeout must be a number"):
        as_seconds("lock_timeout", "soon")
    with pytest.raises(ConfigError, match="must not be negative"):
        as_seconds("lock_timeout", "-1")
    assert as_seconds("lock_timeout", "2.5") == 2.5


SECRET = "Pa55-w0rd"


@pytest.mark.parametrize(
    ("url", "option", "value"),
    [
        (f"postgresql://app:{SECRET}@127.0.0.1:1/app", "pool_size", "lots"),
        (f"mysql://root:{SECRET}@127.0.0.1:1/x", "synchronous", "sometimes"),
        (f"redis://user:{SECRET}@127.0.0.1:1/0", "retry_attempts", "0"),
        (f"mongodb://app:{SECRET}@127.0.0.1:1/x", "timeout", "-1"),
        ("chdb://memory", "batch_size", "0"),
    ],
)
def test_bad_values_name_the_option_and_the_redacted_url(url: str, option: str, value: str) -> None:
    """Refused before connecting (port 1 answers nothing), in the URL or as a keyword."""
    role = "analytics" if url.startswith("chdb") else "conversations"
    opener = open_analytics_sink if role == "analytics" else open_conversation_store
    for attempt in ({"url": f"{url}?{option}={value}"}, {"url": url, option: value}):
        with pytest.raises(ConfigError) as caught:
            opener(**attempt)
        text = str(caught.value)
        shown = parse_url(attempt["url"], role).redacted
        assert f"option {option}" in text or text.startswith(option), text
        assert f"(for {shown})" in text and SECRET not in text


def test_the_option_table_merges_defaults_and_refuses_unknown_names() -> None:
    table = OptionTable(
        Option("fsync", as_bool, True),
        Option("timeout", as_float, 5.0, positive, "must be > 0"),
        Option("connect_timeout", as_float, same_as="timeout"),
        Option("limit", as_int, ABSENT),
        driver_query=True,
    )
    url = parse_url("redis://127.0.0.1/0?fsync=off&timeout=2&socket_keepalive=1")
    assert table.read(url, {}) == {"fsync": False, "timeout": 2.0, "connect_timeout": 2.0}
    # keywords win; a None keyword means "not given": the default, not the URL's value
    assert table.read(url, {"timeout": 3, "limit": "7", "fsync": None}) == {
        "fsync": True,
        "timeout": 3.0,
        "connect_timeout": 3.0,
        "limit": 7,
    }
    with pytest.raises(ConfigError, match=r"unknown option socket_keepalive .*accepted: "):
        OptionTable(*table.options).read(url, {})  # no driver_query: the URL's own names only
    with pytest.raises(ConfigError, match=r"unknown options a, b for .*accepted: conn"):
        table.read(url, {"a": 1, "b": 2})
    with pytest.raises(ConfigError, match=r"option timeout must be > 0, not '0'"):
        table.read(parse_url("redis://127.0.0.1/0?timeout=0"), {})
