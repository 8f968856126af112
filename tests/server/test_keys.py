"""API keys: made once, stored as hashes, listed without secrets, revoked by name."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest

from praisondb import ConfigError, NotFound, PraisonDB, ValidationError
from praisondb.server.keys import KEY_SCOPE, KeyStore, matches, parse_rate, split_key
from tests.backends import BACKENDS

DIRECT = pytest.mark.backends(*(name for name in BACKENDS if name != "http"))
"""Keys live in the server's own store: every backend but the server's client store."""


@pytest.mark.backends("http")
def test_keys_are_not_made_through_the_server(db: PraisonDB) -> None:
    with pytest.raises(ConfigError, match="server's own database"):
        KeyStore(db)


@DIRECT
def test_a_key_is_stored_only_as_its_hash(db: PraisonDB, uid: str) -> None:
    keys = KeyStore(db)
    key = keys.create(f"k-{uid}", tenant="acme", rate=5.0)
    key_id, secret = split_key(key) or ("", "")
    assert key.startswith("pdb_") and len(secret) == 43
    stored = db.state.get(f"key:{key_id}", scope=KEY_SCOPE)
    assert secret not in repr(db.state.items(KEY_SCOPE))
    assert stored["hash"] == hashlib.sha256(secret.encode()).hexdigest()
    record = keys.lookup(key_id)
    assert record is not None
    assert (record.name, record.tenant, record.rate, record.revoked) == (
        f"k-{uid}",
        "acme",
        5.0,
        False,
    )
    assert matches(record, secret)
    assert not matches(record, secret[:-1] + ("A" if secret[-1] != "A" else "B"))
    assert "hash" not in record.public() and secret not in repr(record.public())


@DIRECT
def test_names_are_unique_and_revoked_names_stay_taken(db: PraisonDB, uid: str) -> None:
    keys = KeyStore(db)
    keys.create(f"n-{uid}")
    with pytest.raises(ConfigError, match="exists already"):
        keys.create(f"n-{uid}")
    revoked = keys.revoke(f"n-{uid}")
    assert revoked.revoked
    assert keys.revoke(f"n-{uid}").revoked  # twice is fine
    with pytest.raises(ConfigError, match="exists already"):
        keys.create(f"n-{uid}")
    listed = {r.name: r for r in keys.list()}
    assert listed[f"n-{uid}"].revoked
    with pytest.raises(NotFound, match="keys list"):
        keys.revoke(f"never-{uid}")


@DIRECT
@pytest.mark.parametrize("bad", ["", "has space", "x" * 65, "-lead", "a/b"])
def test_names_and_tenants_are_checked(db: PraisonDB, bad: str) -> None:
    with pytest.raises(ValidationError):
        KeyStore(db).create(bad)
    with pytest.raises(ValidationError):
        KeyStore(db).create("fine", tenant=bad)


def test_rates_parse() -> None:
    assert parse_rate("10/s") == 10.0
    assert parse_rate("600/min") == 10.0
    assert parse_rate("3600/hour") == 1.0
    assert parse_rate("2") == 2.0
    assert parse_rate(None) is None
    for bad in ("fast", "0/s", "-1", "1/fortnight"):
        with pytest.raises(ConfigError):
            parse_rate(bad)


@pytest.mark.parametrize(
    "junk", ["", "pdb_", "pdb_zzzzzzzzzzzz_" + "a" * 43, "pdb_0123456789ab_short", "Bearer x"]
)
def test_malformed_keys_never_reach_the_store(junk: str) -> None:
    assert split_key(junk) is None


def test_the_cli_prints_a_key_once_lists_and_revokes(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/keys.db"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "praisondb", "keys", *args, "--database-url", url],
            capture_output=True,
            text=True,
            check=False,
        )

    made = run("create", "ci", "--tenant", "acme", "--rate", "5/s")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert split_key(key) is not None and "store it now" in made.stderr
    listed = run("list", "--json")
    assert '"name": "ci"' in listed.stdout and '"tenant": "acme"' in listed.stdout
    _, secret = split_key(key) or ("", "")  # the secret may itself hold "_"
    assert key not in listed.stdout and secret not in listed.stdout
    again = run("create", "ci")
    assert again.returncode == 2 and "exists already" in again.stderr
    assert run("revoke", "ci").returncode == 0
    assert '"revoked": true' in run("list", "--json").stdout
    missing = run("revoke", "nobody")
    assert missing.returncode == 2 and "no API key named" in missing.stderr
