"""A URL whose driver is not installed fails with a ConfigError naming the pip extra.

Each case runs in a subprocess whose ``sys.meta_path`` refuses to import the driver:
that simulates an install without the extra, not a database.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

_SCRIPT = textwrap.dedent(
    """
    import json, sys

    class Blocker:
        def __init__(self, names):
            self.names = set(names)

        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in self.names:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Blocker(sys.argv[1].split(",")))
    from praisondb.stores import open_store

    try:
        store = open_store(sys.argv[2], sys.argv[3])
        store.ping()
        print(json.dumps({"type": None, "message": "opened"}))
    except Exception as exc:
        names = [c.__name__ for c in type(exc).__mro__]
        print(json.dumps({"type": names, "message": str(exc)}))
    """
)


def _open_without(blocked: str, url: str, role: str = "conversations") -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT, blocked, url, role],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize(
    ("blocked", "url", "role", "extra"),
    [
        ("psycopg", "postgresql://app:hunter2@127.0.0.1:5432/test", "conversations", "postgres"),
        ("psycopg", "postgresql+psycopg://127.0.0.1/test", "conversations", "postgres"),
        ("pymysql", "mysql://app:hunter2@127.0.0.1:3306/test", "conversations", "mysql"),
        ("pymysql", "mariadb://127.0.0.1/test", "conversations", "mysql"),
        ("clickhouse_connect,chdb", "chdb:///tmp/praisondb-no-chdb", "analytics", "chdb"),
        ("chdb", "chdb:///tmp/praisondb-no-chdb-only", "analytics", "chdb"),
        ("clickhouse_connect", "clickhouse://127.0.0.1:8123", "analytics", "clickhouse"),
        ("pymongo", "mongodb://127.0.0.1:1/x", "conversations", "mongo"),
        ("redis", "redis://127.0.0.1:1/0", "state", "redis"),
    ],
)
def test_missing_driver_names_the_extra(blocked: str, url: str, role: str, extra: str) -> None:
    result = _open_without(blocked, url, role)
    assert result["type"] is not None and "ConfigError" in result["type"], result  # type: ignore[operator]
    message = str(result["message"])
    assert f"pip install 'praisondb[{extra}]'" in message, message
    assert "hunter2" not in message
