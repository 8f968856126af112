"""``HttpStore``: the ConversationStore and StateStore protocols over HTTP.

Each method is one request to the matching route of :mod:`praisondb.server` (see its
modules); records travel as :func:`praisondb.codec.to_record` JSON and errors come back
as the server's typed errors. The server validates and does the work; this store only
spells calls.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timezone
from typing import Any

import orjson

from ...codec import from_record, iso, parse_iso, to_record
from ...errors import Conflict
from ...model import (
    JSON,
    Checkpoint,
    MemoryItem,
    Message,
    Page,
    Run,
    SessionInfo,
    Span,
    StateEntry,
)
from ...server.wire import MAX_PAGE, MESSAGE_FIELDS, ROWS, segment
from ...urls import StoreURL
from ..base import UNSET, Capability, SessionQuery, new_write_token
from .bulk import _Bulk
from .transport import Transport


def _at(value: datetime | None) -> str | None:
    return None if value is None else iso(value)


def _id(value: str) -> str:
    return segment(value)


def _utc(text: str) -> datetime:
    """``parse_iso`` with the server's own spelling (``+00:00``) taken first."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is timezone.utc else parse_iso(text)


def _message(record: dict[str, Any]) -> Message:
    """A message from the server's JSON: the hot path of loading a history, so the
    record is taken as the server's dataclass fields (from_record when it is not)."""
    record["created_at"] = _utc(record["created_at"])
    try:
        return Message(**record)
    except TypeError:  # a newer server's extra fields
        return from_record(Message, record, time=lambda value: value)


_AT = MESSAGE_FIELDS.index("created_at")


def _listed(body: dict[str, Any]) -> list[Message]:
    """The messages of a listing: a :data:`ROWS` body's arrays (one positional call
    each), or objects from a server that writes no rows."""
    rows: list[list[Any]] | None = body.get("rows")
    if rows is None:
        return [_message(r) for r in body["items"]]
    names = tuple(body["fields"])
    if names != MESSAGE_FIELDS:  # another version's fields: by name
        return [_message(dict(zip(names, row, strict=True))) for row in rows]
    found = []
    for row in rows:
        row[_AT] = _utc(row[_AT])
        found.append(Message(*row))
    return found


class _Memories:
    """The MemoriesStore half of :class:`HttpStore` (routes in praisondb/server/memories.py)."""

    _http: Transport

    def _get(self, path: str, **params: Any) -> Any:
        return orjson.loads(self._http.request("GET", path, params=params).content)

    def add_memory(self, item: MemoryItem, *, max_items: int | None = None) -> list[str]:
        body = {"item": to_record(item), "max_items": max_items}
        evicted: list[str] = orjson.loads(
            self._http.request("POST", "/memories", body=body).content
        )["evicted"]
        return evicted

    def get_memory(self, memory_id: str) -> MemoryItem:
        return from_record(MemoryItem, self._get(f"/memories/{_id(memory_id)}"))

    def list_memories(
        self,
        scope: str | None = None,
        owner: str | None = None,
        *,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[MemoryItem]:
        body = self._get("/memories", scope=scope, owner=owner, limit=limit, cursor=cursor)
        return Page([from_record(MemoryItem, r) for r in body["items"]], body["next_cursor"])

    def count_memories(self, scope: str | None = None, owner: str | None = None) -> int:
        count: int = self._get("/memories", scope=scope, owner=owner, count="true")["count"]
        return count

    def delete_memory(self, memory_id: str) -> bool:
        reply = self._http.request("DELETE", f"/memories/{_id(memory_id)}")
        deleted: bool = orjson.loads(reply.content)["deleted"]
        return deleted

    def delete_memories(self, scope: str, owner: str) -> int:
        reply = self._http.request("DELETE", "/memories", params={"scope": scope, "owner": owner})
        deleted: int = orjson.loads(reply.content)["deleted"]
        return deleted

    def search_memories(
        self, scope: str, owner: str, query: str, *, limit: int
    ) -> list[tuple[MemoryItem, float]]:
        body = {"scope": scope, "owner": owner, "query": query, "limit": limit}
        reply = self._http.request("POST", "/memories/search", body=body)
        items = orjson.loads(reply.content)["items"]
        return [(from_record(MemoryItem, r["item"]), float(r["rank"])) for r in items]

    def put_memories(self, items: Sequence[MemoryItem]) -> int:
        body = {"items": [to_record(i) for i in items]}
        written: int = orjson.loads(self._http.request("PUT", "/memories", body=body).content)[
            "written"
        ]
        return written


class HttpStore(_Memories, _Bulk):
    """A ``praisondb serve`` server as a store (``praisondb+http://host:port``).

    Options (URL query or keywords): ``api_key`` (default ``$PRAISONDB_API_KEY``),
    ``timeout`` (seconds per request, 30), ``connect_timeout`` (5), ``retry_attempts``
    (3), ``max_connections`` (100). ``io="async"``: the same store on
    httpcore's ``AsyncConnectionPool`` for the async face.
    """

    capabilities: frozenset[Capability] = frozenset(
        {Capability.PERSISTENT, Capability.MULTI_PROCESS}
    )
    async_io = "driver"
    """``io="async"``: httpcore's AsyncConnectionPool, driven from the core's greenlets."""

    def __init__(self, url: StoreURL, *, io: str = "sync", **options: Any) -> None:
        self.url = url
        self._http = Transport(url, options, io)

    def __repr__(self) -> str:
        return f"HttpStore({self.url.redacted!r})"

    def _get(self, path: str, **params: Any) -> Any:
        return orjson.loads(self._http.request("GET", path, params=params).content)

    def _listed(self, path: str, **params: Any) -> list[Message]:
        reply = self._http.request("GET", path, params=params, headers={"Accept": ROWS})
        return _listed(orjson.loads(reply.content))

    def _items(self, path: str, **params: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self._get(path, **params)["items"]
        return items

    # -- health -------------------------------------------------------------------
    def ping(self) -> None:
        self._get("/readyz")

    def schema_version(self) -> str | None:
        version: str | None = self._get("/readyz").get("schema_version")
        return version

    def close(self) -> None:
        self._http.close()

    # -- sessions -------------------------------------------------------------------
    def create_session(self, info: SessionInfo) -> SessionInfo:
        try:
            body = self._http.request("POST", "/sessions", body=to_record(info)).content
        except Conflict:
            if not self._http.resent:
                raise
            stored = self.get_session(info.id)  # our first try landed, its reply was lost
            if (stored.created_at, stored.metadata, stored.user_id) != (
                info.created_at,
                info.metadata,
                info.user_id,
            ):
                raise
            return stored
        return from_record(SessionInfo, orjson.loads(body))

    def put_session(self, info: SessionInfo) -> None:
        self._http.request("PUT", f"/sessions/{_id(info.id)}", body=to_record(info))

    def get_session(self, session_id: str) -> SessionInfo:
        return from_record(SessionInfo, self._get(f"/sessions/{_id(session_id)}"))

    def _query(self, query: SessionQuery) -> dict[str, Any]:
        return {
            "user_id": query.user_id,
            "agent": query.agent,
            "parent_id": query.parent_id,
            "id_prefix": query.id_prefix or None,
            "exclude_id_prefix": query.exclude_id_prefix or None,
            "updated_after": _at(query.updated_after),
            "updated_before": _at(query.updated_before),
        }

    def list_sessions(self, query: SessionQuery) -> Page[SessionInfo]:
        body = self._get("/sessions", **self._query(query), limit=query.limit, cursor=query.cursor)
        return Page([from_record(SessionInfo, r) for r in body["items"]], body["next_cursor"])

    def count_sessions(self, query: SessionQuery) -> int:
        count: int = self._get("/sessions", **self._query(query), count="true")["count"]
        return count

    def update_session(
        self,
        session_id: str,
        *,
        title: str | None = UNSET,
        metadata: dict[str, Any] | None = None,
        replace_metadata: bool = False,
    ) -> SessionInfo:
        body: dict[str, Any] = {"metadata": metadata, "replace_metadata": replace_metadata}
        if title is not UNSET:
            body["title"] = title
        reply = self._http.request("PATCH", f"/sessions/{_id(session_id)}", body=body)
        return from_record(SessionInfo, orjson.loads(reply.content))

    def delete_session(self, session_id: str) -> bool:
        reply = self._http.request("DELETE", f"/sessions/{_id(session_id)}")
        deleted: bool = orjson.loads(reply.content)["deleted"]
        return deleted

    # -- messages -------------------------------------------------------------------
    def append_messages(self, session_id: str, messages: Sequence[Message]) -> list[Message]:
        if not messages:
            self.get_session(session_id)  # NotFound, as every store
            return []
        body = {"messages": [to_record(m) for m in messages]}
        reply = self._http.request("POST", f"/sessions/{_id(session_id)}/messages", body=body)
        stored = orjson.loads(reply.content)["items"]
        for message, record in zip(messages, stored, strict=True):
            # a resend (ours or the caller's) gets the stored message: its seq and time
            message.seq = record["seq"]
            message.created_at = parse_iso(record["created_at"])
            message.session_id = session_id
        return list(messages)

    def put_messages(self, session_id: str, messages: Sequence[Message]) -> int:
        body = {"messages": [to_record(m) for m in messages]}
        reply = self._http.request("PUT", f"/sessions/{_id(session_id)}/messages", body=body)
        inserted: int = orjson.loads(reply.content)["inserted"]
        return inserted

    def list_messages(
        self,
        session_id: str,
        *,
        after_seq: int | None = None,
        before_seq: int | None = None,
        last: int | None = None,
        limit: int | None = None,
    ) -> list[Message]:
        path = f"/sessions/{_id(session_id)}/messages"
        params: dict[str, Any] = {"after_seq": after_seq, "before_seq": before_seq}
        if last is not None or limit is not None:
            return self._listed(path, **params, last=last, limit=limit)
        # a whole history: pages of MAX_PAGE (one round trip up to that length; JSON is
        # cheaper than NDJSON lines to write and read, see stream_messages for those)
        found: list[Message] = []
        while True:
            page = self._listed(path, **params, limit=MAX_PAGE)
            found.extend(page)
            if len(page) < MAX_PAGE:
                return found
            params["after_seq"] = page[-1].seq

    def stream_messages(self, session_id: str, *, after_seq: int = 0) -> Iterator[Message]:
        """The history after ``after_seq`` as the server streams it (NDJSON), one message
        at a time with bounded memory. A broken stream raises BackendUnavailable; resume
        with ``after_seq`` = the last seq received."""
        path = f"/sessions/{_id(session_id)}/messages"
        with contextlib.closing(self._http.lines(path, {"after_seq": after_seq})) as lines:
            for line in lines:
                yield _message(orjson.loads(line))

    def get_messages(self, session_id: str, ids: Sequence[str]) -> list[Message]:
        reply = self._http.request(
            "POST", f"/sessions/{_id(session_id)}/messages/lookup", body={"ids": list(ids)}
        )
        return [_message(r) for r in orjson.loads(reply.content)["items"]]

    def count_messages(self, session_id: str) -> int:
        count: int = self._get(f"/sessions/{_id(session_id)}/messages", count="true")["count"]
        return count

    def delete_messages(
        self, session_id: str, *, from_seq: int | None = None, to_seq: int | None = None
    ) -> int:
        reply = self._http.request(
            "DELETE",
            f"/sessions/{_id(session_id)}/messages",
            params={"from_seq": from_seq, "to_seq": to_seq},
        )
        deleted: int = orjson.loads(reply.content)["deleted"]
        return deleted

    # -- runs, spans, checkpoints ---------------------------------------------------
    def save_run(self, run: Run) -> None:
        self._http.request("PUT", f"/runs/{_id(run.id)}", body=to_record(run))

    def get_run(self, run_id: str) -> Run:
        return from_record(Run, self._get(f"/runs/{_id(run_id)}"))

    def list_runs(self, session_id: str, *, limit: int | None = None) -> list[Run]:
        return [
            from_record(Run, r)
            for r in self._items(f"/sessions/{_id(session_id)}/runs", limit=limit)
        ]

    def save_span(self, span: Span) -> None:
        self._http.request("PUT", f"/spans/{_id(span.id)}", body=to_record(span))

    def get_span(self, span_id: str) -> Span:
        return from_record(Span, self._get(f"/spans/{_id(span_id)}"))

    def list_spans(
        self,
        *,
        trace_id: str | None = None,
        session_id: str | None = None,
        user_id: str | None = None,
        roots_only: bool = False,
        limit: int | None = None,
        id_prefix: str | None = None,
        exclude_id_prefix: str | None = None,
    ) -> list[Span]:
        items = self._items(
            "/spans",
            trace_id=trace_id,
            session_id=session_id,
            user_id=user_id,
            roots_only="true" if roots_only else None,
            limit=limit,
            id_prefix=id_prefix or None,
            exclude_id_prefix=exclude_id_prefix or None,
        )
        return [from_record(Span, r) for r in items]

    def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        self._http.request("PUT", f"/checkpoints/{_id(checkpoint.id)}", body=to_record(checkpoint))

    def get_checkpoint(self, checkpoint_id: str) -> Checkpoint:
        return from_record(Checkpoint, self._get(f"/checkpoints/{_id(checkpoint_id)}"))

    def list_checkpoints(self, session_id: str) -> list[Checkpoint]:
        items = self._items(f"/sessions/{_id(session_id)}/checkpoints")
        return [from_record(Checkpoint, r) for r in items]

    def delete_checkpoint(self, checkpoint_id: str) -> bool:
        reply = self._http.request("DELETE", f"/checkpoints/{_id(checkpoint_id)}")
        deleted: bool = orjson.loads(reply.content)["deleted"]
        return deleted

    # -- state ------------------------------------------------------------------------
    @staticmethod
    def _entry_path(scope: str, key: str) -> str:
        return f"/state/{_id(scope)}/{_id(key)}"

    def get_entry(self, scope: str, key: str) -> StateEntry | None:
        reply = self._http.request("GET", self._entry_path(scope, key), ok=(404,))
        if reply.status_code == 404:
            return None
        return from_record(StateEntry, orjson.loads(reply.content))

    def set_entry(
        self,
        scope: str,
        key: str,
        value: JSON,
        *,
        expires_at: datetime | None = None,
        expected_version: int | None = None,
        write_token: str | None = None,
    ) -> StateEntry:
        body = {
            "value": value,
            "expires_at": _at(expires_at),
            "write_token": write_token or new_write_token(),  # once, before any re-send
        }
        reply = self._http.request(
            "PUT", self._entry_path(scope, key), body=body, headers=_condition(expected_version)
        )
        return from_record(StateEntry, orjson.loads(reply.content))

    def delete_entry(self, scope: str, key: str, *, expected_version: int | None = None) -> bool:
        try:
            reply = self._http.request(
                "DELETE", self._entry_path(scope, key), headers=_condition(expected_version)
            )
        except Conflict:
            if self._http.resent and self.get_entry(scope, key) is None:
                return True  # our first try removed it; its reply was lost
            raise
        deleted: bool = orjson.loads(reply.content)["deleted"]
        return deleted

    def incr(
        self, scope: str, key: str, amount: int = 1, *, expires_at: datetime | None = None
    ) -> int:
        reply = self._http.request(
            "POST",
            self._entry_path(scope, key) + "/incr",
            # the token (made once, before any re-send) lets the server count a re-sent
            # increment once: it is a compare-and-set there that carries it
            body={
                "amount": amount,
                "expires_at": _at(expires_at),
                "write_token": new_write_token(),
            },
        )
        value: int = orjson.loads(reply.content)["value"]
        return value

    def list_entries(
        self,
        scope: str | None = None,
        prefix: str = "",
        *,
        limit: int | None = None,
        after: tuple[str, str] | None = None,
        scope_prefix: str = "",
    ) -> list[StateEntry]:
        items = self._items(
            "/state",
            scope=scope,
            prefix=prefix or None,
            scope_prefix=scope_prefix or None,
            limit=limit,
            after_scope=None if after is None else after[0],
            after_key=None if after is None else after[1],
        )
        return [from_record(StateEntry, r) for r in items]

    def delete_scope(self, scope: str) -> int:
        reply = self._http.request("DELETE", f"/state/{_id(scope)}")
        deleted: int = orjson.loads(reply.content)["deleted"]
        return deleted

    def put_entries(self, entries: Iterable[StateEntry]) -> None:
        batch = [to_record(e) for e in entries]
        if batch:
            self._http.request("POST", "/state", body={"entries": batch})


def _condition(expected_version: int | None) -> dict[str, str]:
    if expected_version is None:
        return {}
    if expected_version == 0:
        return {"If-None-Match": "*"}
    return {"If-Match": f'"{expected_version}"'}


__all__ = ["HttpStore"]
