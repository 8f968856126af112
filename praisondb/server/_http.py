"""What every route shares: the request's context, bodies in, records and errors out."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ..codec import parse_iso
from ..errors import PraisonDBError, ValidationError
from ..facade import PraisonDB
from ..validation import INT_MAX, check_id
from .auth import Principal, principal_of
from .tenancy import Tenancy, public_text
from .wire import PROBLEM, param, problem

T = TypeVar("T")


@dataclass(frozen=True)
class Context:
    """The app's state every route reads (``request.app.state.praisondb``)."""

    db: PraisonDB
    tenancy: Tenancy
    max_body: int


def context(request: Request) -> Context:
    found: Context = request.app.state.praisondb
    return found


def caller(request: Request) -> tuple[Context, Principal]:
    return context(request), principal_of(request)


async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a (blocking) store call on the worker threads, off the event loop."""
    return await run_in_threadpool(fn, *args, **kwargs)


def json(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """``data`` as JSON; model objects go as they are (orjson writes dataclasses and aware
    datetimes natively, ten times faster than building records first)."""
    return Response(orjson.dumps(data), status, headers=headers, media_type="application/json")


def error_response(
    exc: PraisonDBError, status: int | None = None, who: Principal | None = None
) -> Response:
    """The problem response of ``exc``; for ``who``, its text names the ids as ``who``
    sent them (the store's messages name the namespaced ids it keeps)."""
    body = problem(exc, status)
    if who is not None:
        body["detail"] = public_text(who, body["detail"])
    return Response(orjson.dumps(body), body["status"], media_type=PROBLEM)


async def read_json(request: Request) -> Any:
    """The body as JSON, refusing one over the size limit before reading it all."""
    limit = context(request).max_body
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    try:
        return orjson.loads(b"".join(chunks))
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"the request body is not valid JSON ({exc.msg})") from None


def _too_large(limit: int) -> ValidationError:
    """A ValidationError answered with 413 (see :func:`.wire.status_for`)."""
    exc = ValidationError(
        f"the request body is larger than this server accepts ({limit} bytes); send fewer "
        "messages per request, or start the server with a larger --max-body"
    )
    exc.http_status = 413  # type: ignore[attr-defined]
    return exc


async def read_object(request: Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ValidationError(f"the request body must be a JSON object, not {type(body).__name__}")
    return body


def path_id(request: Request, name: str = "id", what: str = "session id") -> str:
    return check_id(param(request.path_params[name]), what)


# -- query parameters --------------------------------------------------------------
def q_text(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    return None if value is None else check_id(value, name)


def q_int(request: Request, name: str, minimum: int = 0) -> int | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise ValidationError(f"query parameter {name} must be an integer") from None
    if not minimum <= number <= INT_MAX:
        raise ValidationError(f"query parameter {name} must be from {minimum} to {INT_MAX}")
    return number


def q_bool(request: Request, name: str) -> bool:
    value = request.query_params.get(name, "false").lower()
    if value not in {"true", "false", "1", "0"}:
        raise ValidationError(f"query parameter {name} must be true or false")
    return value in {"true", "1"}


def q_time(request: Request, name: str) -> datetime | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    with contextlib.suppress(ValueError):
        return parse_iso(value)
    raise ValidationError(f"query parameter {name} must be an ISO 8601 timestamp")


__all__ = [
    "Context",
    "call",
    "caller",
    "context",
    "error_response",
    "json",
    "path_id",
    "q_bool",
    "q_int",
    "q_text",
    "q_time",
    "read_json",
    "read_object",
]
