"""Signed session tokens: hand a client a session id it cannot forge or keep forever.

Format: ``<payload>.<signature>``, both unpadded base64url. The payload is JSON
``{"v": 1, "sid": ..., "uid": ..., "tnt": ..., "iat": ..., "exp": ...}`` (times in whole
epoch seconds; ``tnt``, the server tenant the session belongs to, only when given); the signature is HMAC-SHA256 over the payload's base64 text, so what is
verified is exactly what was signed. Comparison is constant-time. No state is kept:
revoking one token before it expires means rotating the secret (or deleting the
session).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import timedelta
from typing import Any

import orjson

from .. import clock
from ..errors import InvalidToken, TokenExpired, ValidationError
from ..validation import check_id, check_text, check_ttl

TOKEN_VERSION = 1
MIN_SECRET_BYTES = 16
DEFAULT_TTL = timedelta(hours=1)
CLOCK_SKEW_SECONDS = 5
"""Tokens issued this far in the future (another host's clock) are still accepted."""


def check_secret(secret: str | bytes) -> bytes:
    """The secret as bytes; ValidationError when it is too short to sign with."""
    if isinstance(secret, str):
        check_text(secret, "token secret")
    raw = secret.encode("utf-8") if isinstance(secret, str) else secret
    if not isinstance(raw, bytes) or len(raw) < MIN_SECRET_BYTES:
        raise ValidationError(
            f"token secret must be at least {MIN_SECRET_BYTES} bytes; use e.g. secrets.token_hex(32)"
        )
    return raw


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(payload_b64: str, secret: bytes) -> str:
    return _b64(hmac.new(secret, payload_b64.encode("ascii"), hashlib.sha256).digest())


def issue_token(
    session_id: str,
    secret: str | bytes,
    *,
    ttl: float | timedelta = DEFAULT_TTL,
    user_id: str | None = None,
    tenant: str | None = None,
    now: float | None = None,
) -> str:
    """A token naming ``session_id`` (and ``user_id``, and the ``praisondb serve`` tenant
    it belongs to) that expires after ``ttl``."""
    check_id(session_id)
    seconds = check_ttl(ttl, "token ttl")
    issued = int(clock.time() if now is None else now)
    claims: dict[str, Any] = {
        "v": TOKEN_VERSION,
        "sid": session_id,
        "iat": issued,
        "exp": issued + max(1, round(seconds)),
    }
    if user_id is not None:
        claims["uid"] = user_id
    if tenant is not None:
        claims["tnt"] = check_id(tenant, "tenant")
    payload = _b64(orjson.dumps(claims))
    return f"{payload}.{_sign(payload, check_secret(secret))}"


def read_token(token: str, secret: str | bytes, *, now: float | None = None) -> dict[str, Any]:
    """Verify ``token`` and return its claims; raises InvalidToken or TokenExpired."""
    key = check_secret(secret)
    if not isinstance(token, str) or token.count(".") != 1:
        raise InvalidToken("malformed session token")
    payload, signature = token.split(".")
    try:
        payload.encode("ascii")
        signature.encode("ascii")
    except UnicodeEncodeError:
        raise InvalidToken("malformed session token") from None
    if not hmac.compare_digest(_sign(payload, key), signature):
        raise InvalidToken("session token signature does not match")
    try:
        claims = orjson.loads(_unb64(payload))
    except (ValueError, orjson.JSONDecodeError):
        raise InvalidToken("malformed session token") from None
    if (
        not isinstance(claims, dict)
        or claims.get("v") != TOKEN_VERSION
        or not isinstance(claims.get("sid"), str)
        or not isinstance(claims.get("exp"), int)
        or not isinstance(claims.get("iat"), int)
    ):
        raise InvalidToken("session token has an unknown format")
    current = clock.time() if now is None else now
    if claims["iat"] > current + CLOCK_SKEW_SECONDS:
        raise InvalidToken("session token was issued in the future")
    if current >= claims["exp"]:
        raise TokenExpired(f"session token for {claims['sid']!r} expired")
    return claims


def verify_token(token: str, secret: str | bytes, *, now: float | None = None) -> str:
    """The session id named by a genuine, unexpired token."""
    return str(read_token(token, secret, now=now)["sid"])


__all__ = [
    "InvalidToken",
    "TokenExpired",
    "check_secret",
    "issue_token",
    "read_token",
    "verify_token",
]
