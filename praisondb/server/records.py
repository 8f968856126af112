"""Routes of runs, spans and checkpoints (the ConversationStore's second half)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..codec import parse_checkpoint, parse_run, parse_span
from ..errors import NotFound, ValidationError
from ..model import Checkpoint, Run, Span
from ..stores._kit import newest
from ._http import Context, call, caller, json, path_id, q_bool, q_int, q_text, read_object
from .auth import Principal


def _same_id(request: Request, body_id: str, what: str) -> None:
    if body_id != path_id(request, what=f"{what} id"):
        raise ValidationError(f"the {what} id in the body differs from the one in the path")


Record = TypeVar("Record", Run, Span, Checkpoint)
Endpoint = Callable[[Request], Awaitable[Response]]


def saver(kind: str, parse: Callable[[Any], Record]) -> Endpoint:
    """``PUT /{kind}s/{id}``: the store's ``save_{kind}`` (insert or overwrite by id)."""

    async def save(request: Request) -> Response:
        ctx, who = caller(request)
        record = parse(await read_object(request))
        _same_id(request, record.id, kind)
        save_record = getattr(ctx.db.conversations, f"save_{kind}")
        await call(save_record, ctx.tenancy.inward(who, record))
        return Response(status_code=204)

    return save


def getter(kind: str) -> Endpoint:
    """``GET /{kind}s/{id}``: the store's ``get_{kind}``; another tenant's is a 404."""

    async def get(request: Request) -> Response:
        ctx, who = caller(request)
        record_id = path_id(request, what=f"{kind} id")
        get_record = getattr(ctx.db.conversations, f"get_{kind}")
        found = await call(get_record, ctx.tenancy.store_id(who, record_id))
        return json(ctx.tenancy.visible(who, found, f"{kind} {record_id!r}"))

    return get


async def list_runs(request: Request) -> Response:
    ctx, who = caller(request)
    stored = ctx.tenancy.session_id(who, path_id(request))
    runs = await call(ctx.db.conversations.list_runs, stored, limit=q_int(request, "limit"))
    return json({"items": [ctx.tenancy.visible(who, r, "run") for r in runs]})


async def list_spans(request: Request) -> Response:
    ctx, who = caller(request)
    trace, session = q_text(request, "trace_id"), q_text(request, "session_id")
    if who.session_id is not None:
        session = session or who.session_id
    bound = ctx.tenancy.id_range(who, q_text(request, "id_prefix"))
    excluded, left = ctx.tenancy.id_exclusion(who, q_text(request, "exclude_id_prefix"), bound)
    filters: dict[str, Any] = {
        "trace_id": None if trace is None else ctx.tenancy.store_id(who, trace),
        "session_id": None if session is None else ctx.tenancy.session_id(who, session),
        "user_id": q_text(request, "user_id"),
        "roots_only": q_bool(request, "roots_only"),
        "id_prefix": bound,
        "exclude_id_prefix": excluded,
    }
    spans = await call(_list_spans, ctx, who, filters, q_int(request, "limit"), left)
    return json({"items": [s for s in spans]})


def _list_spans(
    ctx: Context, who: Principal, filters: dict[str, Any], limit: int | None, left: str | None
) -> list[Span]:
    """The caller's spans. The store reads only the caller's id range (a tenant's ``~T~``
    prefix; for the default tenant of a shared store everything outside ``~``); ``left``
    is a caller's exclusion the store could not take beside that one."""
    store = ctx.db.conversations
    if ctx.tenancy.plain(who):
        return store.list_spans(**filters, limit=limit)
    found = store.list_spans(**filters, limit=limit if left is None else None)
    mine = [
        s
        for s in map(lambda s: ctx.tenancy.outward(who, s), found)
        if s is not None and not (left and s.id.startswith(left))
    ]
    return newest(mine, limit)


async def delete_checkpoint(request: Request) -> Response:
    ctx, who = caller(request)
    checkpoint_id = path_id(request, what="checkpoint id")
    return json({"deleted": await call(_delete_checkpoint, ctx, who, checkpoint_id)})


def _delete_checkpoint(ctx: Context, who: Principal, checkpoint_id: str) -> bool:
    store = ctx.db.conversations
    stored = ctx.tenancy.store_id(who, checkpoint_id)
    if not ctx.tenancy.plain(who):
        try:
            ctx.tenancy.visible(who, store.get_checkpoint(stored), "checkpoint")
        except NotFound:
            return False
    return store.delete_checkpoint(stored)


async def list_checkpoints(request: Request) -> Response:
    ctx, who = caller(request)
    stored = ctx.tenancy.session_id(who, path_id(request))
    found = await call(ctx.db.conversations.list_checkpoints, stored)
    return json({"items": [ctx.tenancy.visible(who, c, "checkpoint") for c in found]})


ROUTES = [
    Route("/sessions/{id}/runs", list_runs, methods=["GET"]),
    Route("/sessions/{id}/checkpoints", list_checkpoints, methods=["GET"]),
    Route("/runs/{id}", getter("run"), methods=["GET"]),
    Route("/runs/{id}", saver("run", parse_run), methods=["PUT"]),
    Route("/spans", list_spans, methods=["GET"]),
    Route("/spans/{id}", getter("span"), methods=["GET"]),
    Route("/spans/{id}", saver("span", parse_span), methods=["PUT"]),
    Route("/checkpoints/{id}", getter("checkpoint"), methods=["GET"]),
    Route("/checkpoints/{id}", saver("checkpoint", parse_checkpoint), methods=["PUT"]),
    Route("/checkpoints/{id}", delete_checkpoint, methods=["DELETE"]),
]
