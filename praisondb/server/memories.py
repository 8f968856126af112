"""Routes of long-term memories (the MemoriesStore protocol)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..codec import parse_memory
from ..errors import NotFound, ValidationError
from ..model import MemoryItem, Page
from ..validation import check_id, check_text, whole
from ._http import Context, call, caller, json, path_id, q_bool, q_int, q_text, read_object
from .auth import Principal
from .wire import MAX_PAGE

_SCOPES = ("user", "agent", "app")


def _where(request: Request, ctx: Context, who: Principal) -> tuple[str | None, str | None]:
    scope, owner = request.query_params.get("scope"), q_text(request, "owner")
    if scope is not None and scope not in _SCOPES:
        raise ValidationError(f"memory scope must be user, agent or app, not {scope!r}")
    if who.session_id is not None:
        raise NotFound("memories are not reachable with a session token")
    return scope, None if owner is None else ctx.tenancy.store_id(who, owner, "owner")


def _out(ctx: Context, who: Principal, item: MemoryItem) -> MemoryItem:
    return ctx.tenancy.visible(who, item, f"memory {item.id!r}")


async def add_memory(request: Request) -> Response:
    ctx, who = caller(request)
    body = await read_object(request)
    record: Any = body.get("item")
    item = ctx.tenancy.inward(who, parse_memory(record))
    most = whole(body.get("max_items"))
    if most is not None and (type(most) is not int or most < 1):
        raise ValidationError("max_items must be a positive integer or null")
    evicted = await call(ctx.db.conversations.add_memory, item, max_items=most)  # type: ignore[attr-defined]
    return json({"evicted": [ctx.tenancy.own_id(who, i) or i for i in evicted]})


async def put_memories(request: Request) -> Response:
    ctx, who = caller(request)
    items = (await read_object(request)).get("items")
    if not isinstance(items, list):
        raise ValidationError('the body must be {"items": [...]}')
    batch = [ctx.tenancy.inward(who, parse_memory(i)) for i in items]
    return json({"written": await call(ctx.db.conversations.put_memories, batch)})  # type: ignore[attr-defined]


async def get_memory(request: Request) -> Response:
    ctx, who = caller(request)
    memory_id = path_id(request, what="memory id")
    if who.session_id is not None:
        raise NotFound(f"memory {memory_id!r} not found")
    found = await call(ctx.db.conversations.get_memory, ctx.tenancy.store_id(who, memory_id))  # type: ignore[attr-defined]
    return json(_out(ctx, who, found))


async def list_memories(request: Request) -> Response:
    ctx, who = caller(request)
    scope, owner = _where(request, ctx, who)
    store: Any = ctx.db.conversations
    if q_bool(request, "count"):
        return json({"count": await call(_count, ctx, who, scope, owner)})
    limit = q_int(request, "limit", 1)
    page: Page[MemoryItem] = await call(
        store.list_memories, scope, owner, limit=limit, cursor=request.query_params.get("cursor")
    )
    # a page of a listing across owners may hold fewer (other tenants' items are left out)
    mine = [m for m in (ctx.tenancy.outward(who, m) for m in page.items) if m is not None]
    return json({"items": mine, "next_cursor": page.next_cursor})


def _count(ctx: Context, who: Principal, scope: str | None, owner: str | None) -> int:
    store: Any = ctx.db.conversations
    if ctx.tenancy.plain(who) or owner is not None:
        counted: int = store.count_memories(scope, owner)
        return counted
    total, cursor = 0, None
    while True:
        page = store.list_memories(scope, None, limit=MAX_PAGE, cursor=cursor)
        total += sum(1 for m in page.items if ctx.tenancy.outward(who, m) is not None)
        if page.next_cursor is None:
            return total
        cursor = page.next_cursor


async def delete_memory(request: Request) -> Response:
    ctx, who = caller(request)
    memory_id = path_id(request, what="memory id")
    return json({"deleted": await call(_delete, ctx, who, memory_id)})


def _delete(ctx: Context, who: Principal, memory_id: str) -> bool:
    store: Any = ctx.db.conversations
    if who.session_id is not None:
        return False
    stored = ctx.tenancy.store_id(who, memory_id)
    if not ctx.tenancy.plain(who):
        try:
            _out(ctx, who, store.get_memory(stored))
        except NotFound:
            return False
    deleted: bool = store.delete_memory(stored)
    return deleted


async def delete_memories(request: Request) -> Response:
    ctx, who = caller(request)
    scope, owner = _where(request, ctx, who)
    if scope is None or owner is None:
        raise ValidationError("deleting memories takes both scope and owner")
    store: Any = ctx.db.conversations
    return json({"deleted": await call(store.delete_memories, scope, owner)})


async def search_memories(request: Request) -> Response:
    ctx, who = caller(request)
    body = await read_object(request)
    scope, owner, limit = body.get("scope"), body.get("owner"), whole(body.get("limit"))
    if scope not in _SCOPES:
        raise ValidationError(f"memory scope must be user, agent or app, not {scope!r}")
    if type(limit) is not int or not 1 <= limit <= MAX_PAGE:
        raise ValidationError(f"limit must be an integer from 1 to {MAX_PAGE}")
    if who.session_id is not None:
        raise NotFound("memories are not reachable with a session token")
    query = body.get("query")
    if not isinstance(query, str):
        raise ValidationError("query must be a string")
    check_text(query, "query")  # any words (engine syntax is only words); valid Unicode
    stored_owner = ctx.tenancy.store_id(who, check_id(owner, "owner"), "owner")
    store: Any = ctx.db.conversations
    found = await call(store.search_memories, scope, stored_owner, query, limit=limit)
    return json({"items": [{"item": _out(ctx, who, m), "rank": rank} for m, rank in found]})


ROUTES = [
    Route("/memories", list_memories, methods=["GET"]),
    Route("/memories", add_memory, methods=["POST"]),
    Route("/memories", put_memories, methods=["PUT"]),
    Route("/memories", delete_memories, methods=["DELETE"]),
    Route("/memories/search", search_memories, methods=["POST"]),
    Route("/memories/{id}", get_memory, methods=["GET"]),
    Route("/memories/{id}", delete_memory, methods=["DELETE"]),
]
