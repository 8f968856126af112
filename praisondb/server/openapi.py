"""The OpenAPI 3.1 document of ``praisondb serve``, built from the route table.

Record schemas come from the model dataclasses (one spelling: :mod:`praisondb.codec`);
each route's parameters and bodies are declared in :data:`OPERATIONS`, and
:func:`document` fails when a route has no entry there (or an entry no route), so the
document cannot drift from the app. ``docs/openapi.json`` is its committed copy;
regenerate it with ``python -m praisondb.server openapi > docs/openapi.json``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

from ..model import Checkpoint, MemoryItem, Message, Run, SessionInfo, Span, StateEntry
from .openapi_auth import with_auth
from .openapi_types import (
    COUNT,
    ETAG,
    ID,
    INTEGER,
    JSON_OBJECT,
    JSON_SCHEMAS,
    JSON_VALUE,
    KEY_PREFIX,
    MEMORY_SCOPE,
    MEMORY_TEXT,
    OPTIONAL_ID,
    PAGE_LIMIT,
    POSITIVE,
    ROLE,
    SCOPE,
    TIMESTAMP,
    UNIT,
    VECTOR,
    problem,
)
from .wire import MESSAGE_FIELDS, NDJSON, ROWS

VERSION = "1"

_TYPES: dict[str, dict[str, Any]] = {
    "str": {"type": "string"},
    "int": COUNT,  # every integer field of a record is a count (codec: _Fields.count)
    "float": {"type": "number"},
    "list[float]": {"type": "array", "items": {"type": "number"}},
    "datetime": TIMESTAMP,
    "dict[str, Any]": JSON_OBJECT,
    "Content": {"oneOf": [{"type": "string"}, {"type": "array", "items": JSON_OBJECT}]},
    "JSON": JSON_VALUE,
}


_FIELDS: dict[str, dict[str, Any]] = {
    name: ID
    for name in (
        "id",
        "session_id",
        "user_id",
        "agent",
        "parent_id",
        "run_id",
        "trace_id",
        "key",
        "owner",
    )
}
"""Fields checked as ids wherever they appear (check_id), and the other checked fields."""
_FIELDS |= {"role": ROLE}


def _field_schema(
    annotation: str, name: str = "", shapes: dict[str, Any] | None = None
) -> dict[str, Any]:
    base, _, optional = annotation.partition(" | ")
    schema = dict((shapes or {}).get(name) or _FIELDS.get(name) or _TYPES[base])
    if optional == "None":
        schema = (
            {"anyOf": [schema, {"type": "null"}]}
            if "type" not in schema
            else {**schema, "type": [schema["type"], "null"]}
        )
    return schema


def _record(cls: type, optional: tuple[str, ...] = (), **shapes: dict[str, Any]) -> dict[str, Any]:
    fields = dataclasses.fields(cls)
    return {
        "type": "object",
        "properties": {f.name: _field_schema(str(f.type), f.name, shapes) for f in fields},
        "required": [f.name for f in fields if f.name not in optional],
    }


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _items(name: str) -> dict[str, Any]:
    return {"type": "object", "properties": {"items": {"type": "array", "items": _ref(name)}}}


_ROWS = {
    "type": "object",
    "description": "one array per message, its values in the order of fields",
    "properties": {
        "fields": {"type": "array", "items": {"type": "string"}, "example": list(MESSAGE_FIELDS)},
        "rows": {"type": "array", "items": {"type": "array"}},
    },
    "required": ["fields", "rows"],
}


def _obj(**properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": sorted(properties)}


SCHEMAS: dict[str, Any] = {
    **JSON_SCHEMAS,
    "Session": _record(SessionInfo),
    "Message": _record(Message, seq=POSITIVE),
    "NewMessage": _record(Message, optional=("session_id", "seq", "run_id"), seq=POSITIVE),
    "Run": _record(Run),
    "Span": _record(Span),
    "Checkpoint": _record(Checkpoint),
    "StateEntry": _record(StateEntry, scope=SCOPE, version=POSITIVE),
    "Memory": _record(
        MemoryItem,
        optional=("embedding", "score"),
        scope=MEMORY_SCOPE,
        text=MEMORY_TEXT,
        importance=UNIT,
        relevance=UNIT,
        quality=UNIT,
        embedding=VECTOR,
    ),
    "Problem": {
        "type": "object",
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "error": {"type": "string", "description": "the praisondb error class"},
        },
        "required": ["title", "status", "detail", "error"],
    },
}

_BOOL = {"type": "boolean"}
_INT = COUNT
_TEXT = {"type": "string"}
_TIME = TIMESTAMP


def _q(name: str, schema: dict[str, Any], doc: str = "", required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": doc}


HANDED_OUT = "x-praisondb-handed-out"
"""Marks a parameter whose values only the server makes (a cursor is one page's
next_cursor): any other string is refused, which a schema cannot say."""
_CURSOR = {
    **_q("cursor", {"type": "string", "pattern": "^[A-Za-z0-9_-]+$"}),
    "description": "next_cursor of the previous page (opaque)",
    HANDED_OUT: "next_cursor",
}


def _p(name: str, doc: str, schema: dict[str, Any] = ID) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": doc}


def _h(name: str, doc: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": False, "schema": schema, "description": doc}


def _json(schema: dict[str, Any], doc: str = "") -> dict[str, Any]:
    return {"description": doc or "OK", "content": {"application/json": {"schema": schema}}}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


BODY_ID = "x-praisondb-body-id"
"""Names the path parameter the body's ``id`` must equal (JSON Schema cannot say so)."""


def _put_body(name: str) -> dict[str, Any]:
    body = {**_body(_ref(name)), "description": "the record; its id must equal the path's id"}
    return {"requestBody": body, BODY_ID: "id"}


_ID = "the id, percent-encoded whole (a `/` in it as %2F)"
_SESSION = [_p("id", "the session " + _ID)]
_ENTRY = [_p("scope", "the scope, percent-encoded", SCOPE), _p("key", "the key, percent-encoded")]
_DELETED = _json(_obj(deleted=_BOOL))
_COUNT = _json(_obj(count=_INT))
_NONE = {"description": "Done"}
_WRITE_TOKEN = {
    **OPTIONAL_ID,
    "description": "names this write; a re-send with the same token is not applied twice",
}
_IF_MATCH = _h("If-Match", 'compare-and-set: the ETag ("<version>") the entry must have', ETAG)

OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", "/healthz"): {
        "summary": "The process is up",
        "responses": {"200": _json(_obj(status=_TEXT))},
    },
    ("GET", "/readyz"): {
        "summary": "Every store answers",
        "responses": {"200": _json({"type": "object"})},
    },
    ("GET", "/sessions"): {
        "summary": "List sessions, newest first (or count them with count=true)",
        "parameters": [
            _q("user_id", ID),
            _q("agent", ID),
            _q("parent_id", ID),
            _q("id_prefix", ID, "only sessions whose id starts with this"),
            _q("exclude_id_prefix", ID, "only sessions whose id does not start with this"),
            _q("updated_after", _TIME),
            _q("updated_before", _TIME),
            _q("limit", POSITIVE),
            _CURSOR,
            _q("count", _BOOL, "answer {count} instead of a page"),
        ],
        "responses": {
            "200": _json(
                {
                    "type": "object",
                    "properties": {
                        "items": {"type": "array", "items": _ref("Session")},
                        "next_cursor": {"type": ["string", "null"]},
                        "count": _INT,
                    },
                }
            )
        },
    },
    ("POST", "/sessions"): {
        "summary": "Create a session (409 if the id exists)",
        "requestBody": _body(_ref("Session")),
        "responses": {"201": _json(_ref("Session"))},
    },
    ("GET", "/sessions/{id}"): {
        "summary": "One session",
        "parameters": _SESSION,
        "responses": {"200": _json(_ref("Session"))},
    },
    ("PUT", "/sessions/{id}"): {
        "summary": "Insert or overwrite a session exactly as given (import, copy)",
        "parameters": _SESSION,
        **_put_body("Session"),
        "responses": {"204": _NONE},
    },
    ("PATCH", "/sessions/{id}"): {
        "summary": "Set the title; merge (or replace) metadata",
        "parameters": _SESSION,
        "requestBody": _body(
            {
                "type": "object",
                "properties": {
                    "title": {"type": ["string", "null"]},
                    "metadata": {"anyOf": [JSON_OBJECT, {"type": "null"}]},
                    "replace_metadata": _BOOL,
                },
            }
        ),
        "responses": {"200": _json(_ref("Session"))},
    },
    ("DELETE", "/sessions/{id}"): {
        "summary": "Delete a session and everything in it",
        "parameters": _SESSION,
        "responses": {"200": _DELETED},
    },
    ("GET", "/sessions/{id}/messages"): {
        "summary": f"Messages in seq order; NDJSON with Accept: {NDJSON}, arrays with {ROWS}",
        "parameters": [
            *_SESSION,
            _q("after_seq", _INT),
            _q("before_seq", _INT),
            _q("last", _INT, "the final N (not with NDJSON)"),
            _q("limit", _INT),
            _q("count", _BOOL, "answer {count} instead"),
        ],
        "responses": {
            "200": {
                "description": "The messages",
                "content": {
                    "application/json": {"schema": _items("Message")},
                    NDJSON: {"schema": _ref("Message")},
                    ROWS: {"schema": _ROWS},
                },
            }
        },
    },
    ("POST", "/sessions/{id}/messages"): {
        "summary": "Append; the store assigns seq. Re-sending the same ids and content returns the stored messages",
        "parameters": _SESSION,
        "requestBody": _body(_obj(messages={"type": "array", "items": _ref("NewMessage")})),
        "responses": {"201": _json(_items("Message"))},
    },
    ("PUT", "/sessions/{id}/messages"): {
        "summary": "Insert messages keeping id, seq and created_at; ids already stored are skipped",
        "parameters": _SESSION,
        "requestBody": _body(_obj(messages={"type": "array", "items": _ref("Message")})),
        "responses": {"200": _json(_obj(inserted=_INT))},
    },
    ("DELETE", "/sessions/{id}/messages"): {
        "summary": "Delete messages with from_seq <= seq <= to_seq",
        "parameters": [
            *_SESSION,
            _q("from_seq", INTEGER),
            _q("to_seq", INTEGER),
        ],
        "responses": {"200": _json(_obj(deleted=_INT))},
    },
    ("POST", "/sessions/{id}/messages/lookup"): {
        "summary": "The stored messages with these ids",
        "parameters": _SESSION,
        "requestBody": _body(_obj(ids={"type": "array", "items": ID})),
        "responses": {"200": _json(_items("Message"))},
    },
    ("GET", "/sessions/{id}/runs"): {
        "summary": "Runs, oldest first",
        "parameters": [*_SESSION, _q("limit", _INT)],
        "responses": {"200": _json(_items("Run"))},
    },
    ("GET", "/sessions/{id}/checkpoints"): {
        "summary": "Checkpoints, oldest first",
        "parameters": _SESSION,
        "responses": {"200": _json(_items("Checkpoint"))},
    },
    ("GET", "/runs/{id}"): {
        "summary": "One run",
        "parameters": [_p("id", "the run " + _ID)],
        "responses": {"200": _json(_ref("Run"))},
    },
    ("PUT", "/runs/{id}"): {
        "summary": "Insert or overwrite a run",
        "parameters": [_p("id", "the run " + _ID)],
        **_put_body("Run"),
        "responses": {"204": _NONE},
    },
    ("GET", "/spans"): {
        "summary": "Spans, oldest first",
        "parameters": [
            _q("trace_id", ID),
            _q("session_id", ID),
            _q("user_id", ID),
            _q("roots_only", _BOOL),
            _q("limit", _INT),
            _q("id_prefix", ID, "only spans whose id starts with this"),
            _q("exclude_id_prefix", ID, "only spans whose id does not start with this"),
        ],
        "responses": {"200": _json(_items("Span"))},
    },
    ("GET", "/spans/{id}"): {
        "summary": "One span",
        "parameters": [_p("id", "the span " + _ID)],
        "responses": {"200": _json(_ref("Span"))},
    },
    ("PUT", "/spans/{id}"): {
        "summary": "Insert or overwrite a span",
        "parameters": [_p("id", "the span " + _ID)],
        **_put_body("Span"),
        "responses": {"204": _NONE},
    },
    ("GET", "/checkpoints/{id}"): {
        "summary": "One checkpoint",
        "parameters": [_p("id", "the checkpoint " + _ID)],
        "responses": {"200": _json(_ref("Checkpoint"))},
    },
    ("PUT", "/checkpoints/{id}"): {
        "summary": "Insert or overwrite a checkpoint",
        "parameters": [_p("id", "the checkpoint " + _ID)],
        **_put_body("Checkpoint"),
        "responses": {"204": _NONE},
    },
    ("DELETE", "/checkpoints/{id}"): {
        "summary": "Delete a checkpoint",
        "parameters": [_p("id", "the checkpoint " + _ID)],
        "responses": {"200": _DELETED},
    },
    ("GET", "/state"): {
        "summary": "Live entries sorted by (scope, key)",
        "parameters": [
            _q("scope", SCOPE),
            _q("prefix", KEY_PREFIX),
            _q("scope_prefix", KEY_PREFIX, "only scopes starting with this"),
            _q("limit", _INT),
            _q("after_scope", SCOPE, "list after this (scope, key)"),
            _q("after_key", KEY_PREFIX),
        ],
        "responses": {"200": _json(_items("StateEntry"))},
    },
    ("POST", "/state"): {
        "summary": "Overwrite entries exactly as given (import, copy)",
        "requestBody": _body(_obj(entries={"type": "array", "items": _ref("StateEntry")})),
        "responses": {"204": _NONE},
    },
    ("DELETE", "/state/{scope}"): {
        "summary": "Delete a whole scope",
        "parameters": [_p("scope", "the scope, percent-encoded", SCOPE)],
        "responses": {"200": _json(_obj(deleted=_INT))},
    },
    ("GET", "/state/{scope}/{key}"): {
        "summary": "One live entry; ETag is its version",
        "parameters": _ENTRY,
        "responses": {"200": _json(_ref("StateEntry"))},
    },
    ("PUT", "/state/{scope}/{key}"): {
        "summary": "Write a value (If-Match: compare-and-set; If-None-Match: * creates only; 412 on mismatch)",
        "parameters": [
            *_ENTRY,
            _IF_MATCH,
            _h("If-None-Match", "* : only if no live entry exists", {"enum": ["*"]}),
        ],
        "requestBody": _body(
            {
                "type": "object",
                "properties": {
                    "value": JSON_VALUE,
                    "expires_at": {**TIMESTAMP, "type": ["string", "null"]},
                    "write_token": _WRITE_TOKEN,
                },
                "required": ["value"],
            }
        ),
        "responses": {
            "200": _json(_ref("StateEntry")),
            "412": problem("The condition failed"),
        },
    },
    ("DELETE", "/state/{scope}/{key}"): {
        "summary": "Delete (If-Match: only at that version; 412 otherwise)",
        "parameters": [*_ENTRY, _IF_MATCH],
        "responses": {"200": _DELETED, "412": problem("The condition failed")},
    },
    ("POST", "/state/{scope}/{key}/incr"): {
        "summary": "Atomically add to an integer value",
        "parameters": _ENTRY,
        "requestBody": _body(
            {
                "type": "object",
                "properties": {
                    "amount": INTEGER,
                    "expires_at": {**TIMESTAMP, "type": ["string", "null"]},
                    "write_token": _WRITE_TOKEN,
                },
            }
        ),
        "responses": {"200": _json(_obj(value={"type": "integer"}))},
    },
    ("GET", "/memories"): {
        "summary": "Memories newest first (or count them with count=true)",
        "parameters": [
            _q("scope", MEMORY_SCOPE),
            _q("owner", ID),
            _q("limit", POSITIVE),
            _CURSOR,
            _q("count", _BOOL),
        ],
        "responses": {"200": _json({"type": "object"})},
    },
    ("POST", "/memories"): {
        "summary": "Add a memory, keeping at most max_items in its (scope, owner); same id and content again is a no-op",
        "requestBody": _body(
            {
                "type": "object",
                "properties": {
                    "item": _ref("Memory"),
                    "max_items": {**POSITIVE, "type": ["integer", "null"]},
                },
                "required": ["item"],
            }
        ),
        "responses": {"200": _json(_obj(evicted={"type": "array", "items": _TEXT}))},
    },
    ("PUT", "/memories"): {
        "summary": "Insert or overwrite memories exactly as given (import, copy)",
        "requestBody": _body(_obj(items={"type": "array", "items": _ref("Memory")})),
        "responses": {"200": _json(_obj(written=_INT))},
    },
    ("DELETE", "/memories"): {
        "summary": "Delete every memory of (scope, owner)",
        "parameters": [
            _q("scope", MEMORY_SCOPE, required=True),
            _q("owner", ID, required=True),
        ],
        "responses": {"200": _json(_obj(deleted=_INT))},
    },
    ("POST", "/memories/search"): {
        "summary": "The best text matches with their raw rank",
        "requestBody": _body(
            _obj(
                scope=MEMORY_SCOPE,
                owner=ID,
                query=_TEXT,
                limit=PAGE_LIMIT,
            )
        ),
        "responses": {"200": _json({"type": "object"})},
    },
    ("GET", "/memories/{id}"): {
        "summary": "One memory",
        "parameters": [_p("id", "the memory " + _ID)],
        "responses": {"200": _json(_ref("Memory"))},
    },
    ("DELETE", "/memories/{id}"): {
        "summary": "Delete a memory",
        "parameters": [_p("id", "the memory " + _ID)],
        "responses": {"200": _DELETED},
    },
    ("POST", "/bulk/sessions"): {
        "summary": "Load whole sessions the store lacks (copy); those it holds are left as they "
        "are and named in present, so a re-sent batch stores nothing twice",
        "requestBody": _body(_obj(sessions={"type": "array", "items": _ref("WholeSession")})),
        "responses": {"200": _json(_obj(inserted=_INT, present={"type": "array", "items": ID}))},
    },
}
_PARTS = {"messages": "Message", "runs": "Run", "checkpoints": "Checkpoint", "spans": "Span"}
SCHEMAS["WholeSession"] = {
    "type": "object",
    "description": "a session and its records (their session ids are the session's)",
    "properties": {"session": _ref("Session")}
    | {part: {"type": "array", "items": _ref(record)} for part, record in _PARTS.items()},
    "required": ["session"],
    "additionalProperties": False,
}

_ERRORS = {
    "404": "Not found (another tenant's records too)",
    "409": "Conflict",
    "413": "The body is over the server's --max-body",
    "422": "Invalid input",
    "503": "A store is unavailable",
}


def document(routes: list[Any]) -> dict[str, Any]:
    """The OpenAPI document of the app's ``routes``; raises if one is undeclared."""
    declared = set(OPERATIONS)
    served = {
        (method, route.path)
        for route in routes
        if getattr(route, "include_in_schema", True)
        for method in route.methods or ()
        if method != "HEAD"
    }
    if served != declared:
        raise RuntimeError(
            f"OpenAPI operations and routes differ: undeclared {sorted(served - declared)}, "
            f"unserved {sorted(declared - served)}; edit praisondb/server/openapi.py"
        )
    paths: dict[str, dict[str, Any]] = {}
    for (method, path), operation in sorted(OPERATIONS.items()):
        op = {"parameters": [], **operation}
        op["responses"] = {
            **operation["responses"],
            **{
                code: problem(text)
                for code, text in _ERRORS.items()
                if code not in operation["responses"]
            },
        }
        paths.setdefault(path, {})[method.lower()] = op
    return with_auth(  # serversec: keys, tokens, agents (openapi_auth.py)
        {
            "openapi": "3.1.0",
            "info": {
                "title": "praisondb server",
                "version": VERSION,
                "description": "Sessions, messages, runs, spans, checkpoints and state of one "
                "praisondb database (praisondb serve). Clients: praisondb+http:// URLs.",
            },
            "paths": paths,
            "components": {
                "schemas": SCHEMAS,
            },
        }
    )


def dumps(routes: list[Any]) -> bytes:
    """The document as committed in docs/openapi.json (sorted keys, indented)."""
    options = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
    return orjson.dumps(document(routes), option=options) + b"\n"
