"""Remote agents: ``praisondb serve --agent support=myapp.agents:support``.

Each agent is a :class:`~praisondb.ManagedAgent` (built with the server's database, or
its URL) or any callable ``agent(session, message) -> reply`` (sync or ``async def``;
it gets the sync :class:`~praisondb.Session`). A chat runs one exchange through
``Session.run_agent`` in the caller's tenant, so the turn is stored on the server like
any other: a run with its latency and status, the prompt and the reply attributed to
the agent. Routes:

- ``POST /agents/{name}/sessions/{id}/chat`` ``{"message": "..."}`` ->
  ``{"reply", "session_id", "agent"}`` (the session is created on first use);
- ``GET /agents/{name}/sessions/{id}/messages[?last=N]`` -> ``{"items": [...]}``;
- ``POST /sessions/{id}/token`` ``{"ttl": seconds}`` -> ``{"token", "expires_in"}``:
  an API key holder hands a browser or a worker a token for one session of its tenant.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..codec import to_record
from ..core.multiagent import begin_exchange, fail_exchange, finish_exchange
from ..core.tokens import issue_token
from ..errors import ConfigError, NotFound, ValidationError
from ..validation import whole
from .auth import Authenticator, Principal
from .turns import ChatTurns, turn

if TYPE_CHECKING:
    from ._http import Context

AGENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_SPEC = re.compile(r"^([^=]+)=([\w.]+):([\w.]+)$")
MAX_MESSAGE_CHARS = 1_000_000
MAX_TOKEN_TTL = 30 * 24 * 3600


def load_agent(spec: str) -> tuple[str, Callable[..., Any]]:
    """``"support=myapp.agents:support"`` -> ``("support", the object)``."""
    found = _SPEC.match(spec.strip())
    if found is None or not AGENT_NAME.match(found.group(1)):
        raise ConfigError(
            f"--agent {spec!r} must read NAME=module:attribute (e.g. support=myapp.agents:support)"
        )
    name, module, attribute = found.groups()
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # as uvicorn does: the app's own modules import
    try:
        target: Any = importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(f"--agent {name}: cannot import {module!r} ({exc})") from None
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ConfigError(f"--agent {name}: {module!r} has no attribute {attribute!r}")
        target = getattr(target, part)
    if not callable(target) and not hasattr(target, "run"):
        raise ConfigError(
            f"--agent {name}: {module}:{attribute} is neither a ManagedAgent nor a callable "
            "(session, message) -> reply"
        )
    return name, target


def load_agents(specs: Iterable[str]) -> dict[str, Callable[..., Any]]:
    agents: dict[str, Callable[..., Any]] = {}
    for spec in specs:
        name, agent = load_agent(spec)
        if name in agents:
            raise ConfigError(f"--agent {name} is given twice")
        agents[name] = agent
    return agents


def agent_routes(
    agents: Mapping[str, Callable[..., Any]],
    auth: Authenticator | None,
    turns: ChatTurns | None = None,
) -> list[Any]:
    """Starlette routes for ``agents`` (and session tokens when ``auth`` signs them), over
    the app's database and tenancy (``_http.context``); errors leave through the app's
    PraisonDBError handler as problem bodies. Chats with one session take turns
    (:mod:`.turns`, waiting and leasing as ``turns`` says)."""
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from ._http import call, caller, json, path_id, read_object

    settings = turns or ChatTurns()

    def session_of(request: Request) -> tuple[Context, Principal, str, str]:
        ctx, principal = caller(request)
        session_id = path_id(request)
        return ctx, principal, session_id, ctx.tenancy.session_id(principal, session_id)

    def agent_of(request: Request) -> tuple[str, Any]:
        name = request.path_params["name"]
        if name not in agents:
            raise NotFound(f"no agent {name!r} is served here; serve it with --agent {name}=...")
        return name, agents[name]

    async def chat(request: Request) -> Response:
        """Send a message to the agent; the exchange is stored in the caller's session,
        after the session's previous chat (409 LockTimeout if it does not end in time)."""
        name, agent = agent_of(request)
        ctx, _, session_id, stored = session_of(request)
        message = _message(await read_object(request))
        session = await call(lambda: ctx.db.session(stored, agent=name))
        async with turn(session, settings, session_id, call):
            reply = await _run(session, name, message, agent, call)
        return json({"reply": reply, "session_id": session_id, "agent": name})

    async def messages(request: Request) -> Response:
        """The conversation so far (``last``: only the final N messages)."""
        agent_of(request)
        ctx, _, session_id, stored = session_of(request)
        last = _last(request.query_params.get("last"))

        def read() -> list[dict[str, Any]]:
            if not ctx.db.sessions.exists(stored):
                raise NotFound(f"session {session_id!r} not found")
            items = (
                ctx.db.messages.list(stored, last=last)
                if last
                else list(ctx.db.messages.iterate(stored))
            )
            return [{**to_record(m), "session_id": session_id} for m in items]

        return json({"items": await call(read)})

    async def token(request: Request) -> Response:
        """A signed token for one session of the caller's tenant (API key holders only)."""
        ctx, principal, session_id, stored = session_of(request)
        if auth is None or auth.token_secret is None:
            raise ConfigError("this server issues no session tokens; start it with --token-secret")
        if principal.key_id is None:  # a token does not mint tokens
            raise NotFound(f"session {session_id!r} not found")
        ttl = _ttl(await read_object(request))
        if not await call(ctx.db.sessions.exists, stored):
            raise NotFound(f"session {session_id!r} not found")
        issued = issue_token(session_id, auth.token_secret, ttl=ttl, tenant=principal.tenant)
        return json({"token": issued, "session_id": session_id, "expires_in": ttl})

    routes = [Route("/sessions/{id}/token", token, methods=["POST"])] if auth else []
    if agents:
        routes += [
            Route("/agents/{name}/sessions/{id}/chat", chat, methods=["POST"]),
            Route("/agents/{name}/sessions/{id}/messages", messages, methods=["GET"]),
        ]
    return routes


def _is_async(agent: Any) -> bool:
    return inspect.iscoroutinefunction(agent) or inspect.iscoroutinefunction(
        getattr(agent, "__call__", None)  # noqa: B004 - an object with async __call__
    )


async def _run(
    session: Any, name: str, message: str, agent: Any, in_thread: Callable[..., Any]
) -> Any:
    """One exchange in ``session``: the store's work on worker threads, an ``async def``
    agent awaited here on the loop."""
    if not _is_async(agent):
        return await in_thread(session.run_agent, name, message, agent)
    run_id, started = await in_thread(begin_exchange, session, name, message)
    try:
        reply = await agent(session, message)
    except BaseException as exc:
        await in_thread(fail_exchange, session, run_id, started, exc)
        raise
    return await in_thread(finish_exchange, session, name, run_id, started, reply)


def _message(body: dict[str, Any]) -> str:
    message = body.get("message")
    if not isinstance(message, str) or not message:
        raise ValidationError('the body must be {"message": "<non-empty text>"}')
    if len(message) > MAX_MESSAGE_CHARS:
        raise ValidationError(f"message is over {MAX_MESSAGE_CHARS} characters")
    return message


def _last(text: str | None) -> int | None:
    if text is None:
        return None
    if not text.isdigit() or not 0 < int(text) <= 10_000:
        raise ValidationError("last must be a whole number from 1 to 10000")
    return int(text)


def _ttl(body: dict[str, Any]) -> int:
    ttl = whole(body.get("ttl", 3600))  # JSON has one number type: 600.0 is the integer 600
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 < ttl <= MAX_TOKEN_TTL:
        raise ValidationError(f"ttl must be whole seconds from 1 to {MAX_TOKEN_TTL}")
    return ttl


__all__ = ["agent_routes", "load_agent", "load_agents"]
