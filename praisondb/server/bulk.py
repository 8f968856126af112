"""``POST /bulk/sessions``: many whole sessions in one request (copy's fast path).

The client store's :meth:`~praisondb.stores.http.store.HttpStore.load_sessions` sends
sessions the target lacks, each with its messages (ids, seq and times kept), runs,
checkpoints and spans; the body stays within ``--max-body`` (the client cuts batches to
the size ``/readyz`` announces). For each session the store lacks, the server writes the
children first, then the session and its messages in one ``put_session_batch``
transaction when the store has one (SQL, memory), else in the order copy uses (a
provisional record, the messages, the exact record): so a session is absent, complete,
or -- without a transaction -- provisional, which copy's per-session path resumes.

Idempotent: a session the store already holds is left untouched and named in
``present``; a batch re-sent after a lost reply therefore finds its sessions present and
stores nothing twice (the caller compares them through the per-session path). Ids go
through :class:`.tenancy.Tenancy` exactly as on the single-record routes, so a tenant
writes only under its own namespace and a session token reaches only its session.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..codec import parse_checkpoint, parse_message, parse_run, parse_session, parse_span
from ..errors import Conflict, NotFound, ValidationError
from ..stores.base import BulkSessionLoader, WholeSession
from ._http import Context, call, caller, json, read_object
from .auth import Principal

PARTS = ("messages", "runs", "checkpoints", "spans")


def _list(raw: dict[str, Any], name: str, where: str) -> list[Any]:
    value = raw.get(name, [])
    if not isinstance(value, list):
        raise ValidationError(f"{where}: {name} must be an array")
    return value


def _item(ctx: Context, who: Principal, raw: Any, n: int) -> WholeSession:
    """One body item, validated and with its ids as the store keeps them."""
    where = f"sessions[{n}]"
    if not isinstance(raw, dict) or not isinstance(raw.get("session"), dict):
        raise ValidationError(f'{where} must be {{"session": {{...}}, "messages": [...], ...}}')
    unknown = set(raw) - {"session", *PARTS}
    if unknown:
        raise ValidationError(f"{where} has unknown members {sorted(unknown)[:5]}")
    info = parse_session(raw["session"])
    sid = info.id  # every record nested in the item belongs to its session
    messages = [parse_message(m, sid) for m in _list(raw, "messages", where)]
    messages.sort(key=lambda m: m.seq)
    runs = [parse_run(r, sid) for r in _list(raw, "runs", where)]
    checkpoints = [parse_checkpoint(c, sid) for c in _list(raw, "checkpoints", where)]
    spans = [dataclasses.replace(parse_span(s), session_id=sid) for s in _list(raw, "spans", where)]
    t = ctx.tenancy
    return WholeSession(
        t.inward(who, info),
        [t.inward(who, m) for m in messages],
        [t.inward(who, r) for r in runs],
        [t.inward(who, c) for c in checkpoints],
        [t.inward(who, s) for s in spans],
    )


def _apply(ctx: Context, items: list[WholeSession]) -> tuple[int, list[str]]:
    """Write the sessions the store lacks; returns (messages inserted, stored ids present)."""
    store = ctx.db.conversations
    absent: list[WholeSession] = []
    present: list[str] = []
    for item in items:
        try:
            store.get_session(item.info.id)
        except NotFound:
            absent.append(item)
        else:
            present.append(item.info.id)
    for item in absent:
        for run in item.runs:
            store.save_run(run)
        for checkpoint in item.checkpoints:
            store.save_checkpoint(checkpoint)
        for span in item.spans:
            store.save_span(span)
    if isinstance(store, BulkSessionLoader):
        batch = [(item.info, item.messages) for item in absent]
        return (store.put_session_batch(batch) if batch else 0), present
    inserted = 0
    for item in absent:  # copy's order (transfer/_sync.py): a killed write resumes there
        provisional = dataclasses.replace(
            item.info, last_seq=0, message_count=0, updated_at=item.info.created_at
        )
        store.put_session(provisional)
        if item.messages:
            inserted += store.put_messages(item.info.id, item.messages)
        store.put_session(item.info)
    return inserted, present


async def load_sessions(request: Request) -> Response:
    ctx, who = caller(request)
    raw = (await read_object(request)).get("sessions")
    if not isinstance(raw, list):
        raise ValidationError('the body must be {"sessions": [{"session": {...}, ...}, ...]}')
    items = [_item(ctx, who, one, n) for n, one in enumerate(raw)]
    if len({item.info.id for item in items}) != len(items):
        raise Conflict("a session appears twice in the batch; send each session once")
    inserted, present = await call(_apply, ctx, items)
    mine = [ctx.tenancy.own_id(who, stored) or stored for stored in present]
    return json({"inserted": inserted, "present": mine})


ROUTES = [Route("/bulk/sessions", load_sessions, methods=["POST"])]

__all__ = ["ROUTES"]
