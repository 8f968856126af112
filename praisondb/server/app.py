"""The ASGI application of ``praisondb serve`` (Starlette).

Every route is a thin mapping of one ConversationStore/StateStore method onto JSON
(see :mod:`.sessions`, :mod:`.records`, :mod:`.state`), so the client store
(:mod:`praisondb.stores.http`) is one too, and the conformance suite proves the pair.
Inputs are validated here with :mod:`praisondb.validation` (the server faces hostile
clients); errors leave as problem bodies naming the error class (:mod:`.wire`). Logs
carry methods, paths' shapes and statuses, never message content or secrets.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .. import clock
from ..errors import ConfigError, PraisonDBError
from ..facade import PraisonDB
from . import bulk, memories, records, sessions, state
from ._http import Context, call, context, error_response, json
from .agents import agent_routes
from .auth import Authenticator, middleware, principal_of
from .tenancy import Tenancy
from .turns import ChatTurns
from .wire import CLOCK_HEADER, route_path

CLOCK_HEADER_BYTES = CLOCK_HEADER.lower().encode()

log = logging.getLogger("praisondb.server")

DEFAULT_MAX_BODY = 16 * 1024 * 1024
"""Bytes of request body accepted (``--max-body``): 16 MiB, a few thousand messages."""


async def healthz(request: Request) -> Response:
    """The process is up (it answers without touching any store)."""
    return json({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Every store answers; 503 with the typed error otherwise. ``max_body`` tells
    clients how large a request may be (the bulk loader cuts its batches to it)."""
    ctx = context(request)
    latencies = await call(ctx.db.ping)
    version = await call(ctx.db.conversations.schema_version)
    return json(
        {
            "status": "ready",
            "latency_ms": latencies,
            "schema_version": version,
            "max_body": ctx.max_body,
        }
    )


async def openapi(request: Request) -> Response:
    from .openapi import document

    return json(document(ROUTES))


async def _typed_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PraisonDBError)
    response = error_response(exc, who=principal_of(request))
    retry_after = getattr(exc, "retry_after", None)  # a chat refused its session's turn
    if isinstance(retry_after, int):
        response.headers["Retry-After"] = str(retry_after)
    if response.status_code >= 500:
        log.warning("%s %s: %s", request.method, request.url.path, type(exc).__name__)
    return response


async def _unexpected(request: Request, exc: Exception) -> Response:
    # no detail: it may hold data; the traceback goes to the server's log
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return error_response(PraisonDBError("internal server error; see the server's log"), 500)


ROUTES: list[Route] = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"], include_in_schema=False),
    *sessions.ROUTES,
    *records.ROUTES,
    *state.ROUTES,
    *memories.ROUTES,
    *bulk.ROUTES,
]


class RawPathRouting:
    """Routes on the raw path with ``%2F`` kept escaped, so ids holding ``/`` stay one
    path segment (see :func:`.wire.route_path`); runs the request on the client's clock
    when it is ahead (see :func:`_client_ahead`)."""

    def __init__(self, app: ASGIApp, *, follow_clock: bool = True) -> None:
        self.app = app
        self.follow_clock = follow_clock
        """Follow a client's clock that runs ahead: for test suites that move their
        clock forward (``--follow-client-clock``), never on by default, since a client
        whose clock is wrong would expire other clients' entries and leases early."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("raw_path"):
            try:
                path = route_path(scope["raw_path"].split(b"?", 1)[0])
            except UnicodeDecodeError:
                response = json({"error": "ValidationError", "detail": "path is not UTF-8"}, 400)
                await response(scope, receive, send)
                return
            root = scope.get("root_path", "")
            scope = {**scope, "path": path if path.startswith(root) else root + path}
            ahead = _client_ahead(scope) if self.follow_clock else 0
            if ahead:
                with clock.running_ahead(ahead):
                    await self.app(scope, receive, send)
                return
        await self.app(scope, receive, send)


MAX_AHEAD_NS = 7 * 86_400 * 1_000_000_000
"""The furthest ahead of this server's clock a client's clock is followed (a week)."""


def _client_ahead(scope: Scope) -> int:
    """How far the client's clock (``X-PraisonDB-Clock``: ns since the epoch) runs ahead
    of ours, within :data:`MAX_AHEAD_NS`; 0 when it is behind or absent. Only ahead: a
    client cannot bring expired entries back."""
    for name, value in scope["headers"]:
        if name == CLOCK_HEADER_BYTES:
            if not value.isdigit() or len(value) > 20:
                return 0
            return min(max(0, int(value) - time.time_ns()), MAX_AHEAD_NS)
    return 0


def create_app(
    db: PraisonDB,
    *,
    auth: Authenticator | None = None,
    agents: Mapping[str, Callable[..., Any]] | None = None,
    chat_turns: ChatTurns | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY,
    cors_origins: Sequence[str] = (),
    follow_client_clock: bool = False,
) -> Starlette:
    """The application serving ``db``. ``auth=None``: every caller is the ``default``
    tenant (a private network, or a proxy that authenticates). ``agents`` are mounted
    by the auth/agents layer under ``/agents/{name}``; this core leaves them alone; their
    chats with one session take turns as ``chat_turns`` says (``--chat-wait/--chat-lease``)."""
    app = Starlette(
        routes=[*ROUTES, *agent_routes(dict(agents or {}), auth, chat_turns)],
        middleware=middleware(auth, tuple(cors_origins)),  # serversec: auth, CORS, access log
        exception_handlers={PraisonDBError: _typed_error, Exception: _unexpected},
    )
    app.state.praisondb = Context(db, Tenancy(shared=auth is not None), max_body_bytes)
    app.state.auth = auth
    app.state.agents = dict(agents or {})
    if follow_client_clock and auth is not None:
        raise ConfigError(
            "a server with keys never follows a client's clock (one tenant's clock must "
            "not expire another's entries): drop --follow-client-clock"
        )
    app.add_middleware(RawPathRouting, follow_clock=follow_client_clock)
    return app


__all__ = ["DEFAULT_MAX_BODY", "ROUTES", "create_app"]
