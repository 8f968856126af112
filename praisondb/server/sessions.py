"""Routes of sessions and their messages (the ConversationStore's first half)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ..codec import parse_message, parse_session
from ..core.batches import already_stored
from ..errors import Conflict, NotFound, ValidationError
from ..model import Message, Page, SessionInfo
from ..stores.base import (
    UNSET,
    SessionQuery,
    WireRowReader,
    decode_session_cursor,
    encode_cursor,
    session_cursor,
)
from ..validation import check_id, check_metadata
from ._http import (
    Context,
    call,
    caller,
    json,
    path_id,
    q_bool,
    q_int,
    q_text,
    q_time,
    read_object,
)
from .auth import Principal
from .wire import MAX_PAGE, NDJSON, ROWS, message_rows, rows_body

MAX_LIST = MAX_PAGE
STREAM_BATCH = 1_000


# -- sessions ------------------------------------------------------------------------
async def list_sessions(request: Request) -> Response:
    ctx, who = caller(request)
    parent = q_text(request, "parent_id")
    try:
        id_prefix = ctx.tenancy.id_prefix(who, q_text(request, "id_prefix"))
    except NotFound:  # a session token's one session does not match
        if q_bool(request, "count"):
            return json({"count": 0})
        return json({"items": [], "next_cursor": None})
    excluded, left = ctx.tenancy.id_exclusion(who, q_text(request, "exclude_id_prefix"), id_prefix)
    query = SessionQuery(
        user_id=q_text(request, "user_id"),
        agent=q_text(request, "agent"),
        parent_id=None if parent is None else ctx.tenancy.store_id(who, parent),
        updated_after=q_time(request, "updated_after"),
        updated_before=q_time(request, "updated_before"),
        id_prefix=id_prefix,
        exclude_id_prefix=excluded,
        limit=min(q_int(request, "limit", 1) or 50, MAX_LIST),
        cursor=_cursor_in(ctx, who, request.query_params.get("cursor")),
    )
    if q_bool(request, "count"):
        return json({"count": await call(_count_sessions, ctx, who, query, left)})
    page = await call(_list_sessions, ctx, who, query, left)
    return json({"items": page.items, "next_cursor": page.next_cursor})


def _cursor_in(ctx: Context, who: Principal, cursor: str | None) -> str | None:
    """A cursor as the store wants it: the caller's page ended at its own spelling of an
    id (cursors name only ids the caller sent), the store's keyset needs the stored one."""
    if cursor is None or ctx.tenancy.plain(who):
        return cursor
    created, session_id = decode_session_cursor(cursor)
    return encode_cursor(created, ctx.tenancy.store_id(who, session_id))


def _list_sessions(
    ctx: Context, who: Principal, query: SessionQuery, left: str | None = None
) -> Page[SessionInfo]:
    """One page; a tenant's query carries its id prefix, so the store reads that tenant's
    rows only, and the default tenant's of a shared store excludes the reserved ``~`` ids
    (the tenants' range, skipped in the store). ``left``: a caller's own exclusion the
    store could not take beside that one, filtered out here."""
    store = ctx.db.conversations
    if ctx.tenancy.plain(who):
        return store.list_sessions(query)
    items: list[SessionInfo] = []
    cursor = query.cursor
    while True:  # only the default tenant's pages can hold rows that are not its own
        page = store.list_sessions(dataclasses.replace(query, cursor=cursor))
        for info in page.items:
            mine = ctx.tenancy.outward(who, info)
            if mine is not None and not (left and mine.id.startswith(left)):
                items.append(mine)
                if len(items) == query.limit:
                    more = page.next_cursor is not None or info is not page.items[-1]
                    return Page(items, session_cursor(mine) if more else None)
        if page.next_cursor is None:
            return Page(items, None)
        cursor = page.next_cursor


def _count_sessions(
    ctx: Context, who: Principal, query: SessionQuery, left: str | None = None
) -> int:
    if ctx.tenancy.plain(who) or (left is None and who.session_id is None):
        return ctx.db.conversations.count_sessions(query)  # exactly the caller's sessions
    total, cursor = 0, None
    while True:
        again = dataclasses.replace(query, limit=MAX_LIST, cursor=cursor)
        page = _list_sessions(ctx, who, again, left)
        total += len(page.items)
        if page.next_cursor is None:
            return total
        cursor = _cursor_in(ctx, who, page.next_cursor)


async def create_session(request: Request) -> Response:
    ctx, who = caller(request)
    info = ctx.tenancy.inward(who, parse_session(await read_object(request)))
    created = await call(ctx.db.conversations.create_session, info)
    return json(ctx.tenancy.visible(who, created, "session"), 201)


async def put_session(request: Request) -> Response:
    ctx, who = caller(request)
    info = parse_session(await read_object(request))
    if info.id != path_id(request):
        raise ValidationError("the session id in the body differs from the one in the path")
    await call(ctx.db.conversations.put_session, ctx.tenancy.inward(who, info))
    return Response(status_code=204)


async def get_session(request: Request) -> Response:
    ctx, who = caller(request)
    stored = ctx.tenancy.session_id(who, path_id(request))
    info = await call(ctx.db.conversations.get_session, stored)
    return json(ctx.tenancy.visible(who, info, "session"))


async def update_session(request: Request) -> Response:
    ctx, who = caller(request)
    stored = ctx.tenancy.session_id(who, path_id(request))
    body = await read_object(request)
    title = body.get("title", UNSET)
    if title is not UNSET and title is not None and not isinstance(title, str):
        raise ValidationError("title must be a string or null")
    metadata = body.get("metadata")
    replace = body.get("replace_metadata", False)
    if not isinstance(replace, bool):
        raise ValidationError("replace_metadata must be true or false")
    info = await call(
        ctx.db.conversations.update_session,
        stored,
        title=title,
        metadata=None if metadata is None else check_metadata(metadata),
        replace_metadata=replace,
    )
    return json(ctx.tenancy.visible(who, info, "session"))


async def delete_session(request: Request) -> Response:
    ctx, who = caller(request)
    try:
        stored = ctx.tenancy.session_id(who, path_id(request))
    except NotFound:
        return json({"deleted": False})
    return json({"deleted": await call(ctx.db.conversations.delete_session, stored)})


# -- messages ------------------------------------------------------------------------
def _messages(body: dict[str, Any], session_id: str, *, fresh: bool) -> list[Message]:
    items = body.get("messages")
    if not isinstance(items, list):
        raise ValidationError('the body must be {"messages": [...]}')
    batch = []
    for item in items:
        if fresh and isinstance(item, dict):
            item = {**item, "seq": item.get("seq") or 1}  # assigned by the store
        message = parse_message(item, session_id)
        if fresh:
            message.seq = 0
        batch.append(message)
    return batch


def _append(ctx: Context, stored: str, batch: list[Message]) -> list[Message]:
    """Append; a batch whose ids are all stored with the same content is a resend (a
    lost reply) and gets the stored messages back, so a retried POST is idempotent."""
    store = ctx.db.conversations
    try:
        return store.append_messages(stored, batch)
    except Conflict:
        return already_stored(store, stored, batch)


async def _batch(request: Request, *, fresh: bool) -> tuple[Context, Principal, str, list[Message]]:
    """The caller, the stored session id and the body's messages as the store keeps them."""
    ctx, who = caller(request)
    session_id = path_id(request)
    stored = ctx.tenancy.session_id(who, session_id)
    batch = _messages(await read_object(request), session_id, fresh=fresh)
    return ctx, who, stored, [ctx.tenancy.inward(who, m) for m in batch]


async def append_messages(request: Request) -> Response:
    ctx, who, stored, batch = await _batch(request, fresh=True)
    appended = await call(_append, ctx, stored, batch)
    return json({"items": _out(ctx, who, appended)}, 201)


async def put_messages(request: Request) -> Response:
    ctx, _who, stored, batch = await _batch(request, fresh=False)
    return json({"inserted": await call(ctx.db.conversations.put_messages, stored, batch)})


def _out(ctx: Context, who: Principal, messages: list[Message]) -> list[Message]:
    if ctx.tenancy.plain(who):
        return messages  # ids as stored (outward would hand back each message as it is)
    return [ctx.tenancy.visible(who, m, "message") for m in messages]


async def list_messages(request: Request) -> Response:
    ctx, who = caller(request)
    stored = ctx.tenancy.session_id(who, path_id(request))
    store = ctx.db.conversations
    if q_bool(request, "count"):
        return json({"count": await call(store.count_messages, stored)})
    after, before = q_int(request, "after_seq"), q_int(request, "before_seq")
    last, limit = q_int(request, "last"), q_int(request, "limit")
    if NDJSON in request.headers.get("accept", ""):
        if last is not None:
            raise ValidationError("streaming takes after_seq, before_seq and limit, not last")
        lines = _stream(ctx, who, stored, after or 0, before, limit)
        return StreamingResponse(_threaded(lines), media_type=NDJSON)
    if limit is None and last is None:
        limit = MAX_LIST
    rows = ROWS in request.headers.get("accept", "")
    if rows and last is None and limit is not None and ctx.tenancy.plain(who):
        body = await call(_rows, store, stored, after, before, limit)
        return Response(body, media_type=ROWS)
    found = await call(
        store.list_messages, stored, after_seq=after, before_seq=before, last=last, limit=limit
    )
    if rows:
        return Response(message_rows(_out(ctx, who, found)), media_type=ROWS)
    return json({"items": _out(ctx, who, found)})


def _rows(store: Any, stored: str, after: int | None, before: int | None, limit: int) -> bytes:
    """A :data:`ROWS` listing, from the store's own rows where it has them (the SQL store
    on SQLite and PostgreSQL hands its JSON over unparsed: ``wire_rows``)."""
    found = None
    if isinstance(store, WireRowReader):
        found = store.wire_rows(stored, after_seq=after, before_seq=before, limit=limit)
    if found is None:
        return message_rows(
            store.list_messages(stored, after_seq=after, before_seq=before, limit=limit)
        )
    return rows_body(found)


def _stream(
    ctx: Context, who: Principal, stored: str, after: int, before: int | None, limit: int | None
) -> Iterator[bytes]:
    """The history as NDJSON lines, read ``STREAM_BATCH`` at a time (bounded memory)."""
    left = limit
    while left is None or left > 0:
        size = STREAM_BATCH if left is None else min(left, STREAM_BATCH)
        batch = ctx.db.conversations.list_messages(
            stored, after_seq=after, before_seq=before, limit=size
        )
        if batch:
            yield b"".join(orjson.dumps(m) + b"\n" for m in _out(ctx, who, batch))
        if len(batch) < size:
            return
        after = batch[-1].seq
        left = None if left is None else left - len(batch)


async def _threaded(lines: Iterator[bytes]) -> AsyncIterator[bytes]:
    sentinel = b""
    while True:
        chunk = await call(next, lines, sentinel)
        if chunk is sentinel:
            return
        yield chunk


async def lookup_messages(request: Request) -> Response:
    ctx, who = caller(request)
    stored = ctx.tenancy.session_id(who, path_id(request))
    ids = (await read_object(request)).get("ids")
    if not isinstance(ids, list):
        raise ValidationError('the body must be {"ids": [...]}')
    wanted = [check_id(i, "message id") for i in ids]
    found = await call(ctx.db.conversations.get_messages, stored, wanted)
    return json({"items": _out(ctx, who, found)})


async def delete_messages(request: Request) -> Response:
    ctx, who = caller(request)
    stored = ctx.tenancy.session_id(who, path_id(request))
    deleted = await call(
        ctx.db.conversations.delete_messages,
        stored,
        from_seq=q_int(request, "from_seq", -(2**63)),
        to_seq=q_int(request, "to_seq", -(2**63)),
    )
    return json({"deleted": deleted})


ROUTES = [
    Route("/sessions", list_sessions, methods=["GET"]),
    Route("/sessions", create_session, methods=["POST"]),
    Route("/sessions/{id}", get_session, methods=["GET"]),
    Route("/sessions/{id}", put_session, methods=["PUT"]),
    Route("/sessions/{id}", update_session, methods=["PATCH"]),
    Route("/sessions/{id}", delete_session, methods=["DELETE"]),
    Route("/sessions/{id}/messages", list_messages, methods=["GET"]),
    Route("/sessions/{id}/messages", append_messages, methods=["POST"]),
    Route("/sessions/{id}/messages", put_messages, methods=["PUT"]),
    Route("/sessions/{id}/messages", delete_messages, methods=["DELETE"]),
    Route("/sessions/{id}/messages/lookup", lookup_messages, methods=["POST"]),
]
