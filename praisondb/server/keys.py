"""API keys for ``praisondb serve``: created once, stored as hashes, revoked by name.

A key reads ``pdb_<id>_<secret>``: ``id`` (12 hex digits) names the stored record and is
no secret (like an access key id); ``secret`` is 32 random bytes (256 bits), base64url.
Only ``sha256(secret)`` is stored. A slow hash (scrypt, argon2) exists to make guessing a
*human-chosen* password expensive; a 256-bit random secret cannot be guessed at any
speed, so a slow hash would only add tens of milliseconds to every request. The stored
hash is compared with :func:`hmac.compare_digest` (constant time).

Records live in the server's state store, scope :data:`KEY_SCOPE` (reserved for the
server: the HTTP routes refuse it), two entries per key:

- ``key:<id>``  -> ``{"name", "tenant", "hash", "created_at", "revoked", "rate"}``
- ``name:<name>`` -> ``{"id"}``, written with compare-and-set (version 0), so two
  ``keys create`` of one name cannot both win.

A revoked key keeps its records (``keys list`` shows it revoked) and its name stays
taken, so a leaked key's name never comes back to life with a new secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

from .. import clock
from ..errors import ConfigError, Conflict, NotFound, ValidationError
from ..validation import check_id

KEY_SCOPE = "praisondb.keys"
"""The state scope holding key records; the server's routes never expose it."""
KEY_PREFIX = "pdb_"
_KEY = re.compile(r"^pdb_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:/\s*(s|sec|second|m|min|minute|h|hour))?\s*$")
_PER = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}
DEFAULT_TENANT = "default"


@dataclass(frozen=True)
class KeyRecord:
    """What is stored about one key (never the key itself)."""

    id: str
    name: str
    tenant: str
    created_at: str
    revoked: bool
    rate: float | None
    """Requests per second this key may make (token bucket, burst of one second's worth);
    None: no limit of its own."""
    digest: str

    def public(self) -> dict[str, Any]:
        """The record as ``keys list`` shows it: no hash."""
        return {
            "name": self.name,
            "id": self.id,
            "tenant": self.tenant,
            "created_at": self.created_at,
            "revoked": self.revoked,
            "rate": self.rate,
        }


def parse_rate(text: str | float | None) -> float | None:
    """``"10/s"``, ``"600/min"``, ``"5"`` (per second) -> requests per second."""
    if text is None or isinstance(text, (int, float)):
        rate = None if text is None else float(text)
    else:
        found = _RATE.match(text)
        if found is None:
            raise ConfigError(f"rate {text!r} is not N/s, N/min or N/hour (e.g. 10/s)")
        rate = float(found.group(1)) / _PER[found.group(2) or "s"]
    if rate is not None and not rate > 0:
        raise ConfigError("a rate must be more than 0 requests per second")
    return rate


def check_tenant(tenant: object) -> str:
    """Tenants are short names: letters, digits, ``.``, ``_``, ``-``."""
    return _check_name(tenant, "tenant")


def _check_name(name: object, what: str = "key name") -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValidationError(
            f"{what} {name!r} must be 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def split_key(presented: str) -> tuple[str, str] | None:
    """``(id, secret)`` of a well-formed key, else None (no store is asked about junk)."""
    found = _KEY.match(presented)
    return None if found is None else (found.group(1), found.group(2))


class KeyStore:
    """Create, list, revoke and check API keys in a database's state store."""

    def __init__(self, db: Any) -> None:
        url = getattr(db, "state_url", None) or getattr(db, "database_url", None)
        if getattr(url, "scheme", "").startswith("praisondb+"):
            raise ConfigError(
                "API keys are made on the server's own database, not through praisondb serve: "
                "give `praisondb keys` the server's --database-url (and --state-url)"
            )
        self._state = db.state

    def create(self, name: str, *, tenant: str = DEFAULT_TENANT, rate: float | None = None) -> str:
        """Store a new key's hash and return the key, the only time it exists in full."""
        _check_name(name)
        check_tenant(tenant)
        key_id = secrets.token_hex(6)
        secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii").rstrip("=")
        try:
            self._state.set(f"name:{name}", {"id": key_id}, scope=KEY_SCOPE, expected_version=0)
        except Conflict:
            raise ConfigError(
                f"a key named {name!r} exists already (revoked keys keep their names); "
                "choose another name"
            ) from None
        record = {
            "name": name,
            "tenant": tenant,
            "hash": digest(secret),
            "created_at": clock.now().isoformat(),
            "revoked": False,
            "rate": rate,
        }
        self._state.set(f"key:{key_id}", record, scope=KEY_SCOPE, expected_version=0)
        return f"{KEY_PREFIX}{key_id}_{secret}"

    def list(self) -> list[KeyRecord]:
        """Every key, revoked ones included, by name."""
        entries = self._state.list(KEY_SCOPE, "key:")
        records = [_record(e.key.removeprefix("key:"), e.value) for e in entries]
        return sorted(records, key=lambda r: r.name)

    def revoke(self, name: str) -> KeyRecord:
        """Mark the key ``name`` revoked; servers refuse it from their next lookup."""
        _check_name(name)
        pointer = self._state.get(f"name:{name}", scope=KEY_SCOPE)
        if not isinstance(pointer, dict) or not isinstance(pointer.get("id"), str):
            raise NotFound(f"no API key named {name!r}; `praisondb keys list` shows them")
        key_id = pointer["id"]
        while True:
            entry = self._state.get_entry(f"key:{key_id}", scope=KEY_SCOPE)
            if entry is None:
                raise NotFound(f"API key {name!r} has no record; it was never completed")
            try:
                self._state.set(
                    entry.key,
                    {**entry.value, "revoked": True},
                    scope=KEY_SCOPE,
                    expected_version=entry.version,
                )
            except Conflict:
                continue  # changed under us (another revoke): read it again
            return _record(key_id, {**entry.value, "revoked": True})

    def lookup(self, key_id: str) -> KeyRecord | None:
        """The record of key ``key_id`` (from :func:`split_key`), or None."""
        value = self._state.get(f"key:{check_id(key_id, 'key id')}", scope=KEY_SCOPE)
        return None if value is None else _record(key_id, value)


def _record(key_id: str, value: Any) -> KeyRecord:
    if not isinstance(value, dict):
        raise ValidationError(f"API key record {key_id!r} is damaged; revoke it and make a new key")
    rate = value.get("rate")
    return KeyRecord(
        id=key_id,
        name=str(value.get("name")),
        tenant=str(value.get("tenant", DEFAULT_TENANT)),
        created_at=str(value.get("created_at")),
        revoked=bool(value.get("revoked", True)),
        rate=float(rate) if isinstance(rate, (int, float)) else None,
        digest=str(value.get("hash", "")),
    )


def matches(record: KeyRecord, secret: str) -> bool:
    """Whether ``secret`` is the key's, compared in constant time."""
    return hmac.compare_digest(record.digest, digest(secret))


__all__ = [
    "DEFAULT_TENANT",
    "KEY_PREFIX",
    "KEY_SCOPE",
    "KeyRecord",
    "KeyStore",
    "check_tenant",
    "matches",
    "parse_rate",
    "split_key",
]
