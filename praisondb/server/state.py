"""Routes of key/value state (the StateStore), with ETag = version and conditional writes.

``GET /state/{scope}/{key}`` answers with ``ETag: "<version>"``. ``PUT`` and ``DELETE``
with ``If-Match: "<version>"`` are compare-and-set, ``PUT`` with ``If-None-Match: *``
creates only; a failed condition is ``412`` (the client raises Conflict).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..codec import parse_iso, parse_state
from ..errors import Conflict, NotFound, ValidationError
from ..model import StateEntry
from ..stores._kit import prefix_upper_bound
from ..stores.base import StateStore
from ..validation import (
    INT_MAX,
    INT_MIN,
    check_id,
    check_json,
    check_key,
    check_scope,
    incremented,
    whole,
)
from ._http import Context, call, caller, error_response, json, q_int, read_object
from .auth import Principal
from .tenancy import RESERVED_SCOPE
from .wire import param

PAGE = 1_000


def _where(request: Request) -> tuple[str, str]:
    scope = check_scope(param(request.path_params["scope"]))
    return scope, check_key(param(request.path_params["key"]))


def _etag(entry: StateEntry) -> dict[str, str]:
    return {"ETag": f'"{entry.version}"'}


def _expected(request: Request) -> int | None:
    """The version ``If-Match`` names (0 for ``If-None-Match: *``), or None."""
    match = request.headers.get("if-match")
    if match is not None:
        tag = match.strip().removeprefix("W/").strip('"')
        # ASCII digits only: int() refuses some str.isdigit() digits ("²"), which was a 500
        if not (tag.isascii() and tag.isdigit()) or int(tag) > INT_MAX:
            raise ValidationError('If-Match must be an ETag of this API: "<version>"')
        return int(tag)
    if request.headers.get("if-none-match", "").strip() == "*":
        return 0
    return None


def _expires(body: dict[str, Any]) -> Any:
    value = body.get("expires_at")
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError("expires_at must be an ISO 8601 timestamp or null")
    try:
        return parse_iso(value)
    except ValueError:
        raise ValidationError("expires_at must be an ISO 8601 timestamp or null") from None


async def get_entry(request: Request) -> Response:
    ctx, who = caller(request)
    scope, key = _where(request)
    entry = await call(ctx.db.state_store.get_entry, ctx.tenancy.scope(who, scope), key)
    if entry is None:
        raise NotFound(f"state {scope}/{key} not found")
    return json(_out(ctx, who, entry), headers=_etag(entry))


def _out(ctx: Context, who: Principal, entry: StateEntry) -> StateEntry:
    mine = ctx.tenancy.entry_out(who, entry)
    if mine is None:
        raise NotFound("state entry not found")
    return mine


async def set_entry(request: Request) -> Response:
    ctx, who = caller(request)
    scope, key = _where(request)
    expected = _expected(request)
    body = await read_object(request)
    if "value" not in body:
        raise ValidationError('the body must be {"value": ..., "expires_at": null}')
    token = body.get("write_token")
    try:
        entry = await call(
            ctx.db.state_store.set_entry,
            ctx.tenancy.scope(who, scope),
            key,
            check_json(body["value"], "state value"),
            expires_at=_expires(body),
            expected_version=expected,
            write_token=None if token is None else check_id(token, "write_token"),
        )
    except Conflict as exc:
        return error_response(exc, 412, who)
    return json(_out(ctx, who, entry), headers=_etag(entry))


async def delete_entry(request: Request) -> Response:
    ctx, who = caller(request)
    scope, key = _where(request)
    try:
        deleted = await call(
            ctx.db.state_store.delete_entry,
            ctx.tenancy.scope(who, scope),
            key,
            expected_version=_expected(request),
        )
    except Conflict as exc:
        return error_response(exc, 412, who)
    return json({"deleted": deleted})


async def incr(request: Request) -> Response:
    ctx, who = caller(request)
    scope, key = _where(request)
    body = await read_object(request)
    amount = whole(body.get("amount", 1))
    if type(amount) is not int or not INT_MIN <= amount <= INT_MAX:
        raise ValidationError("amount must be a 64-bit integer")
    token = body.get("write_token")
    token = None if token is None else check_id(token, "write_token")
    expires_at, stored_scope = _expires(body), ctx.tenancy.scope(who, scope)
    store = ctx.db.state_store
    try:
        if token is None:
            value = await call(store.incr, stored_scope, key, amount, expires_at=expires_at)
        else:
            value = await call(_incr_once, store, stored_scope, key, amount, expires_at, token)
    except ValidationError as exc:
        # the request was valid; the stored value is not an integer, or the sum leaves 64
        # bits: a conflict with the entry's state (the client still raises ValidationError)
        exc.http_status = 409  # type: ignore[attr-defined]
        raise
    return json({"value": value})


def _incr_once(
    store: StateStore, scope: str, key: str, amount: int, expires_at: Any, token: str
) -> int:
    """``incr`` as a compare-and-set carrying the client's write token, so a request the
    client re-sent after a lost reply is counted once: the store finds the token on the
    entry the first request wrote and returns that entry."""
    while True:
        current = store.get_entry(scope, key)
        if current is None:
            value, version, expiry = amount, 0, expires_at
        else:
            value = incremented(scope, key, current.value, amount)
            version, expiry = current.version, current.expires_at
        try:
            entry = store.set_entry(
                scope, key, value, expires_at=expiry, expected_version=version, write_token=token
            )
        except Conflict:
            continue  # another writer came between: read again
        stored: int = entry.value
        return stored


async def list_entries(request: Request) -> Response:
    ctx, who = caller(request)
    raw_scope = request.query_params.get("scope")
    scope = None if raw_scope is None else check_scope(raw_scope)
    prefix = request.query_params.get("prefix", "")
    scopes = request.query_params.get("scope_prefix", "")
    after_scope = request.query_params.get("after_scope")
    after = None
    if after_scope is not None:
        after = (after_scope, request.query_params.get("after_key", ""))
    entries = await call(_list, ctx, who, scope, prefix, q_int(request, "limit"), after, scopes)
    return json({"items": [e for e in entries]})


def _list(
    ctx: Context,
    who: Principal,
    scope: str | None,
    prefix: str,
    limit: int | None,
    after: tuple[str, str] | None,
    scopes: str = "",
) -> list[StateEntry]:
    """The caller's entries. A tenant's listing is one scope range of the store
    (``tenant:T:`` + ``scopes``): no other tenant's row is read. The default tenant of a
    shared store skips the ``tenant:`` range in one jump (one page may hold some)."""
    store, tenancy = ctx.db.state_store, ctx.tenancy
    if who.session_id is not None:
        scope = scope or f"session:{who.session_id}"
    if scope is not None and not scope.startswith(scopes):
        return []
    if scope is not None:
        try:
            stored = tenancy.scope(who, scope)
        except NotFound:
            return []
        cursor = None if after is None else (tenancy.scope(who, after[0]), after[1])
        found = store.list_entries(stored, prefix, limit=limit, after=cursor)
        return [e for e in (tenancy.entry_out(who, e) for e in found) if e is not None]
    base = tenancy.list_prefix(who)
    cursor = None if after is None else (tenancy.scope(who, after[0]), after[1])
    if base is not None:
        found = store.list_entries(
            None, prefix, limit=limit, after=cursor, scope_prefix=base + scopes
        )
        return [e for e in (tenancy.entry_out(who, e) for e in found) if e is not None]
    mine: list[StateEntry] = []
    while limit is None or len(mine) < limit:
        page = store.list_entries(None, prefix, limit=PAGE, after=cursor, scope_prefix=scopes)
        for entry in page:
            out = tenancy.entry_out(who, entry)
            if out is not None:
                mine.append(out)
                if limit is not None and len(mine) == limit:
                    return mine
            else:
                jump = _skipped_range(entry.scope)
                if jump is not None:  # past the whole range in one step
                    cursor = (jump, "")
                    break
            cursor = (entry.scope, entry.key)
        else:
            if len(page) < PAGE:
                return mine
    return mine


def _skipped_range(scope: str) -> str | None:
    """Where the range of scopes no default-tenant listing shows ends, for a scope in it:
    the tenants' (``tenant:``) and the server's own (``praisondb.keys:``, rate limits)."""
    for hidden in ("tenant:", RESERVED_SCOPE + ":"):
        if scope.startswith(hidden):
            return prefix_upper_bound(hidden)
    return None


async def delete_scope(request: Request) -> Response:
    ctx, who = caller(request)
    scope = check_scope(param(request.path_params["scope"]))
    stored = ctx.tenancy.scope(who, scope)
    return json({"deleted": await call(ctx.db.state_store.delete_scope, stored)})


async def put_entries(request: Request) -> Response:
    ctx, who = caller(request)
    items = (await read_object(request)).get("entries")
    if not isinstance(items, list):
        raise ValidationError('the body must be {"entries": [...]}')
    entries = [ctx.tenancy.entry_in(who, parse_state(item)) for item in items]
    await call(ctx.db.state_store.put_entries, entries)
    return Response(status_code=204)


ROUTES = [
    Route("/state", list_entries, methods=["GET"]),
    Route("/state", put_entries, methods=["POST"]),
    Route("/state/{scope}", delete_scope, methods=["DELETE"]),
    Route("/state/{scope}/{key}", get_entry, methods=["GET"]),
    Route("/state/{scope}/{key}", set_entry, methods=["PUT"]),
    Route("/state/{scope}/{key}", delete_entry, methods=["DELETE"]),
    Route("/state/{scope}/{key}/incr", incr, methods=["POST"]),
]
