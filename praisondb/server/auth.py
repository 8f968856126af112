"""Who is calling the server: API keys, signed session tokens, rate limits, access log.

Every request but the probes (``/healthz``, ``/readyz``, ``/openapi.json``) carries
``Authorization: Bearer <credential>``, where the credential is either

- an API key (``pdb_...``, see :mod:`.keys`): the caller is the key's tenant and may
  touch every session and state entry of that tenant; or
- a signed session token (:mod:`praisondb.core.tokens`, signed with the server's
  ``--token-secret``): the caller may touch exactly the one session the token names, in
  the tenant the token names (``default`` when it names none).

No credential, a wrong or revoked key, a forged or expired token: 401. The routes turn
the :class:`Principal` into store ids (tenancy.py) and answer 404 for a session outside
it, never 403, so nobody learns which ids exist elsewhere.

Key records are cached for :attr:`Authenticator.cache_seconds` (2 s by default): a key
revoked with ``praisondb keys revoke`` is refused by every server within that time, and
at once by a server that revoked it itself. Rate limits are per key (or per token's
session): a budget per window shared through the state store by every server process,
which each lease slices of (:mod:`.limits`), on top of each process's token bucket;
with ``memory://`` state, the buckets alone (one process).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import orjson

from ..core.tokens import check_secret, read_token
from ..errors import (
    BackendUnavailable,
    ConfigError,
    InvalidToken,
    PraisonDBError,
    ValidationError,
)
from .keys import DEFAULT_TENANT, KeyRecord, KeyStore, check_tenant, matches, split_key
from .limits import RateLimiter, SharedRateLimiter
from .wire import PROBLEM, problem, status_for

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PRINCIPAL_KEY = "praisondb.principal"
"""Where the middleware leaves the caller in the ASGI scope."""
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json"})
"""Paths that answer without a credential: probes and the published contract."""
access_log = logging.getLogger("praisondb.server.access")


@dataclass(frozen=True)
class Principal:
    """The caller: a tenant, and how it proved it.

    ``key_id`` is the API key's id (None for a session token or an open server);
    ``session_id`` is set when a signed session token authenticated the call, and then
    the caller may touch that session only. ``key_name`` is for the access log."""

    tenant: str = DEFAULT_TENANT
    key_id: str | None = None
    session_id: str | None = None
    key_name: str | None = None


ANONYMOUS = Principal(tenant=DEFAULT_TENANT)
"""Every caller of a server started without keys."""


def principal_of(request: Any) -> Principal:
    """The caller of ``request`` (a Starlette Request or anything with ``.scope``)."""
    found = request.scope.get(PRINCIPAL_KEY)
    return found if isinstance(found, Principal) else ANONYMOUS


class Authenticator:
    """Checks credentials against the keys in ``db`` (and tokens against ``token_secret``).

    ``default_rate`` (requests/s) limits keys created without a rate of their own and
    session tokens (per session); None: no limit for them."""

    def __init__(
        self,
        db: Any,
        *,
        token_secret: str | bytes | None = None,
        default_rate: float | None = None,
        cache_seconds: float = 2.0,
    ) -> None:
        if token_secret is not None:
            check_secret(token_secret)  # fail at start-up, not on the first request
        self.keys = KeyStore(db)
        self.token_secret = token_secret
        self.default_rate = default_rate
        self.cache_seconds = cache_seconds
        self.limiter = RateLimiter()
        state = getattr(db, "state_store", None)
        self.shared: SharedRateLimiter | None = None
        if state is not None and state.url.family != "memory":
            self.shared = SharedRateLimiter(state, self.limiter)
        """Limits shared by the processes on one state store (None: this process only)."""
        self._cache: dict[str, tuple[float, KeyRecord | None]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never the secret
        return f"Authenticator(tokens={'on' if self.token_secret else 'off'})"

    def cached(self, authorization: str | None) -> Principal | None:
        """The principal when it can be told without the store (a fresh cache entry or a
        session token), else None: then call :meth:`authenticate` off the event loop."""
        credential = _bearer(authorization)
        parts = split_key(credential)
        if parts is None:
            return self._from_token(credential)
        with self._lock:
            hit = self._cache.get(parts[0])
        if hit is None or time.monotonic() - hit[0] >= self.cache_seconds:
            return None
        return _principal(hit[1], parts[1])

    def authenticate(self, authorization: str | None) -> Principal:
        """The caller named by an ``Authorization`` header; ConfigError when refused."""
        credential = _bearer(authorization)
        parts = split_key(credential)
        if parts is None:
            return self._from_token(credential)
        key_id, secret = parts
        record = self.keys.lookup(key_id)
        with self._lock:
            self._cache[key_id] = (time.monotonic(), record)
        return _principal(record, secret)

    def forget(self, key_id: str) -> None:
        """Drop a cached key record (this server revoked it)."""
        with self._lock:
            self._cache.pop(key_id, None)

    def quick_wait(self, principal: Principal, rate: float | None) -> float | None:
        """:meth:`retry_after` when it needs no store call, else None."""
        rate = rate or self.default_rate
        if rate is None:
            return 0.0
        if self.shared is None:
            return self.limiter.take(_limit_name(principal), rate)
        return self.shared.quick(_limit_name(principal), rate)

    def retry_after(self, principal: Principal, rate: float | None) -> float:
        """Seconds to wait before ``principal`` may call again (0: go ahead); may lease a
        slice of the shared budget from the state store (call it off the event loop)."""
        rate = rate or self.default_rate
        if rate is None:
            return 0.0
        if self.shared is None:
            return self.limiter.take(_limit_name(principal), rate)
        return self.shared.take(_limit_name(principal), rate)

    def rate_of(self, principal: Principal) -> float | None:
        if principal.key_id is None:
            return None
        with self._lock:
            hit = self._cache.get(principal.key_id)
        return None if hit is None or hit[1] is None else hit[1].rate

    def _from_token(self, credential: str) -> Principal:
        if self.token_secret is None or credential.startswith("pdb_"):
            raise ConfigError("the credential is not a valid API key; check PRAISONDB_API_KEY")
        claims = read_token(credential, self.token_secret)
        tenant = claims.get("tnt", DEFAULT_TENANT)
        try:
            check_tenant(tenant)
        except PraisonDBError:
            raise InvalidToken("session token names an invalid tenant") from None
        return Principal(tenant=tenant, session_id=str(claims["sid"]))


def _limit_name(principal: Principal) -> str:
    return principal.key_id or f"session:{principal.tenant}:{principal.session_id}"


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise ConfigError("no credential: send 'Authorization: Bearer <API key or token>'")
    scheme, _, credential = authorization.strip().partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential or len(credential) > 4096:
        raise ConfigError("the Authorization header must read 'Bearer <API key or token>'")
    return credential


def _principal(record: KeyRecord | None, secret: str) -> Principal:
    if record is None or not matches(record, secret):
        raise ConfigError("the API key is not known here; check PRAISONDB_API_KEY")
    if record.revoked:
        raise ConfigError(f"the API key {record.name!r} was revoked; ask for a new key")
    return Principal(tenant=record.tenant, key_id=record.id, key_name=record.name)


class AuthMiddleware:
    """ASGI middleware: sets the :class:`Principal`, enforces rate limits, logs access.

    With ``authenticator=None`` every caller is :data:`ANONYMOUS` (an open server
    on a loopback address); the access log is written either way. A principal already in
    the scope is kept as it is: only code in this process can put one there (an ASGI
    layer wrapped around the app that authenticates callers its own way). A log line holds the
    method, path, status, latency, tenant and key name: never a credential, a query
    string or a body."""

    def __init__(self, app: ASGIApp, authenticator: Authenticator | None = None) -> None:
        self.app = app
        self.authenticator = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        principal = ANONYMOUS
        try:
            refused = None
            given = scope.get(PRINCIPAL_KEY)
            if isinstance(given, Principal):  # an outer layer of this process vouched
                principal = given
            elif self.authenticator is not None and scope["path"] not in OPEN_PATHS:
                principal, refused = await self._check(scope)
            if refused is not None:
                await refused(scope, receive, sending)
            else:
                scope[PRINCIPAL_KEY] = principal
                await self.app(scope, receive, sending)
        finally:
            access_log.info(
                "%s %s %d %.1fms tenant=%s key=%s",
                scope["method"],
                scope["path"],
                status[0],
                (time.perf_counter() - started) * 1000,
                principal.tenant,
                principal.key_name or ("token" if principal.session_id else "-"),
            )

    async def _check(self, scope: Scope) -> tuple[Principal, ASGIApp | None]:
        from anyio import to_thread

        assert self.authenticator is not None
        header = _header(scope, b"authorization")
        try:
            principal = self.authenticator.cached(header)
            if principal is None:
                principal = await to_thread.run_sync(self.authenticator.authenticate, header)
        except (ConfigError, ValidationError) as exc:  # ValidationError: InvalidToken, a
            return ANONYMOUS, _refusal(401, exc)  # damaged key record
        except PraisonDBError as exc:  # the key store is down: the caller may retry
            return ANONYMOUS, _refusal(status_for(exc), exc)
        rate = self.authenticator.rate_of(principal)
        wait = self.authenticator.quick_wait(principal, rate)
        if wait is None:  # a slice of the shared budget is leased from the state store
            wait = await to_thread.run_sync(self.authenticator.retry_after, principal, rate)
        if wait > 0:
            seconds = math.ceil(wait)
            limited = BackendUnavailable(f"this key's rate limit is reached; retry in {seconds} s")
            return principal, _refusal(429, limited, seconds)
        return principal, None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _refusal(status: int, error: PraisonDBError, retry_after: int | None = None) -> ASGIApp:
    """A problem body (wire.py) naming ``error``'s class, so the client raises it typed."""
    from starlette.responses import Response

    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    body = orjson.dumps(problem(error, status))
    return Response(body, status, headers=headers, media_type=PROBLEM)


def middleware(
    authenticator: Authenticator | None, cors_origins: tuple[str, ...] = ()
) -> list[Any]:
    """The middleware ``create_app`` installs, outermost first: CORS only when origins
    are given (off by default), then authentication and the access log."""
    from starlette.middleware import Middleware
    from starlette.middleware.cors import CORSMiddleware

    stack = []
    if cors_origins:
        stack.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(cors_origins),
                allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                allow_headers=["Authorization", "Content-Type", "If-Match", "If-None-Match"],
                expose_headers=["ETag", "Retry-After"],
            )
        )
    stack.append(Middleware(AuthMiddleware, authenticator=authenticator))
    return stack


__all__ = [
    "ANONYMOUS",
    "OPEN_PATHS",
    "PRINCIPAL_KEY",
    "AuthMiddleware",
    "Authenticator",
    "Principal",
    "RateLimiter",
    "middleware",
    "principal_of",
]
