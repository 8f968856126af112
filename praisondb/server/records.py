"""Routes of runs, spans and checkpoints (the ConversationStore's second half)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..codec import parse_checkpoint, parse_run, parse_span, to_record
from ..errors import NotFound, ValidationError
from ..model import Span
from ._http import Context, call, caller, json, path_id, q_bool, q_int, q_text, read_object
from .auth import Principal


def _same_id(request: Request, body_id: str, what: str) -> None:
    if body_id != path_id(request, what=f"{what} id"):
        raise ValidationError(f"the {what} id in the body differs from the one in the path")


async def save_run(request: Request) -> Response:
    ctx, who = caller(request)
    run = parse_run(await read_object(request))
    _same_id(request, run.id, "run")
    await call(ctx.db.conversations.save_run, ctx.tenancy.inward(who, run))
    return Response(status_code=204)


async def get_run(request: Request) -> Response:
    ctx, who = caller(request)
    run_id = path_id(request, what="run id")
    run = await call(ctx.db.conversations.get_run, ctx.tenancy.store_id(who, run_id))
    return json(to_record(ctx.tenancy.visible(who, run, f"run {run_id!r}")))


async def list_runs(request: Request) -> Response:
    ctx, who = caller(request)
    stored = ctx.tenancy.session_id(who, path_id(request))
    runs = await call(ctx.db.conversations.list_runs, stored, limit=q_int(request, "limit"))
    return json({"items": [to_record(ctx.tenancy.visible(who, r, "run")) for r in runs]})


async def save_span(request: Request) -> Response:
    ctx, who = caller(request)
    span = parse_span(await read_object(request))
    _same_id(request, span.id, "span")
    await call(ctx.db.conversations.save_span, ctx.tenancy.inward(who, span))
    return Response(status_code=204)


async def get_span(request: Request) -> Response:
    ctx, who = caller(request)
    span_id = path_id(request, what="span id")
    span = await call(ctx.db.conversations.get_span, ctx.tenancy.store_id(who, span_id))
    return json(to_record(ctx.tenancy.visible(who, span, f"span {span_id!r}")))


async def list_spans(request: Request) -> Response:
    ctx, who = caller(request)
    trace, session = q_text(request, "trace_id"), q_text(request, "session_id")
    if who.session_id is not None:
        session = session or who.session_id
    filters: dict[str, Any] = {
        "trace_id": None if trace is None else ctx.tenancy.store_id(who, trace),
        "session_id": None if session is None else ctx.tenancy.session_id(who, session),
        "user_id": q_text(request, "user_id"),
        "roots_only": q_bool(request, "roots_only"),
    }
    spans = await call(_list_spans, ctx, who, filters, q_int(request, "limit"))
    return json({"items": [to_record(s) for s in spans]})


def _list_spans(
    ctx: Context, who: Principal, filters: dict[str, Any], limit: int | None
) -> list[Span]:
    store = ctx.db.conversations
    if ctx.tenancy.plain(who):
        return store.list_spans(**filters, limit=limit)
    mine = [s for s in map(lambda s: ctx.tenancy.outward(who, s), store.list_spans(**filters)) if s]
    return mine if limit is None else mine[-limit:] if limit else []


async def save_checkpoint(request: Request) -> Response:
    ctx, who = caller(request)
    checkpoint = parse_checkpoint(await read_object(request))
    _same_id(request, checkpoint.id, "checkpoint")
    await call(ctx.db.conversations.save_checkpoint, ctx.tenancy.inward(who, checkpoint))
    return Response(status_code=204)


async def get_checkpoint(request: Request) -> Response:
    ctx, who = caller(request)
    checkpoint_id = path_id(request, what="checkpoint id")
    found = await call(
        ctx.db.conversations.get_checkpoint, ctx.tenancy.store_id(who, checkpoint_id)
    )
    return json(to_record(ctx.tenancy.visible(who, found, f"checkpoint {checkpoint_id!r}")))


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
    return json({"items": [to_record(ctx.tenancy.visible(who, c, "checkpoint")) for c in found]})


ROUTES = [
    Route("/sessions/{id}/runs", list_runs, methods=["GET"]),
    Route("/sessions/{id}/checkpoints", list_checkpoints, methods=["GET"]),
    Route("/runs/{id}", get_run, methods=["GET"]),
    Route("/runs/{id}", save_run, methods=["PUT"]),
    Route("/spans", list_spans, methods=["GET"]),
    Route("/spans/{id}", get_span, methods=["GET"]),
    Route("/spans/{id}", save_span, methods=["PUT"]),
    Route("/checkpoints/{id}", get_checkpoint, methods=["GET"]),
    Route("/checkpoints/{id}", save_checkpoint, methods=["PUT"]),
    Route("/checkpoints/{id}", delete_checkpoint, methods=["DELETE"]),
]
