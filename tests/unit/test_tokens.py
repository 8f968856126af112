"""HMAC session tokens: genuine tokens verify; forged, altered or expired ones do not."""

from __future__ import annotations

import base64

import orjson
import pytest

from praisondb import ValidationError
from praisondb.core.tokens import InvalidToken, TokenExpired, issue_token, read_token, verify_token

SECRET = "0123456789abcdef0123456789abcdef"


def test_round_trip_and_claims() -> None:
    token = issue_token("s-1", SECRET, ttl=60, user_id="u-1", now=1_000)
    assert verify_token(token, SECRET, now=1_030) == "s-1"
    claims = read_token(token, SECRET, now=1_030)
    assert claims == {"v": 1, "sid": "s-1", "uid": "u-1", "iat": 1_000, "exp": 1_060}
    assert verify_token(token, SECRET.encode(), now=1_030) == "s-1"  # bytes secrets too


def test_expiry_is_enforced() -> None:
    token = issue_token("s-1", SECRET, ttl=60, now=1_000)
    with pytest.raises(TokenExpired):
        verify_token(token, SECRET, now=1_060)
    with pytest.raises(InvalidToken):  # far in the future: another clock, or forged
        verify_token(token, SECRET, now=900)


def test_wrong_secret_and_tampering_are_rejected() -> None:
    token = issue_token("s-1", SECRET, now=1_000)
    with pytest.raises(InvalidToken):
        verify_token(token, "another-secret-0123456789", now=1_001)
    payload, signature = token.split(".")
    forged = (
        base64.urlsafe_b64encode(
            orjson.dumps({"v": 1, "sid": "admin", "iat": 1_000, "exp": 9_999_999_999})
        )
        .decode()
        .rstrip("=")
    )
    with pytest.raises(InvalidToken):
        verify_token(f"{forged}.{signature}", SECRET, now=1_001)
    for bad in ["", "abc", "a.b.c", f"{payload}.", f"{payload}.{signature}x", "é.é"]:
        with pytest.raises(InvalidToken):
            verify_token(bad, SECRET, now=1_001)


def test_weak_secrets_and_bad_ttls_are_refused() -> None:
    with pytest.raises(ValidationError):
        issue_token("s-1", "short")
    with pytest.raises(ValidationError):
        issue_token("s-1", SECRET, ttl=0)
    with pytest.raises(ValidationError):
        issue_token("", SECRET)


def test_invalid_token_is_a_validation_error() -> None:
    assert issubclass(TokenExpired, InvalidToken) and issubclass(InvalidToken, ValidationError)


def test_a_token_may_name_its_server_tenant() -> None:
    from praisondb.core.tokens import issue_token, read_token

    secret = "tenant-claim-secret-0123456789"
    claims = read_token(issue_token("s-1", secret, tenant="acme"), secret)
    assert (claims["sid"], claims["tnt"]) == ("s-1", "acme")
    assert "tnt" not in read_token(issue_token("s-1", secret), secret)
