"""What travels between ``praisondb serve`` and its client store, in one place.

Records are the model dataclasses' fields as JSON (ISO 8601 timestamps with offset): the
client sends :func:`praisondb.codec.to_record`, the server lets orjson write them. Errors are
RFC 9457 problem bodies whose ``error`` member names the :class:`PraisonDBError` class,
so the client raises the same typed error the server's store raised. Path segments
(ids, scopes, keys are opaque data: ``a/b``, ``..``) are percent-encoded whole, slashes
included; the server routes on the raw path (see :func:`route_path`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from operator import attrgetter
from typing import Any
from urllib.parse import quote, unquote

import orjson

from .. import errors
from ..errors import (
    BackendUnavailable,
    ConfigError,
    Conflict,
    DatabaseClosed,
    NotFound,
    PraisonDBError,
    SchemaOutOfDate,
    StorageFull,
    ValidationError,
)
from ..model import Message

NDJSON = "application/x-ndjson"
MAX_PAGE = 10_000
"""The most records one JSON listing returns; page on with a cursor or ``after_seq``."""
CLOCK_HEADER = "X-PraisonDB-Clock"
"""The client's clock (ns since the epoch) on each request; the server follows it when it
runs ahead (tests move praisondb's clock forward instead of waiting for a TTL)."""
PROBLEM = "application/problem+json"
ROWS = "application/vnd.praisondb.rows+json"
"""A listing of messages as ``{"fields": [...], "rows": [[...], ...]}``, one array per
message in the fields' order (the client asks with ``Accept``): a 1,000-message history
encodes in a fifth of the time of objects and decodes in a third, names written once."""
MESSAGE_FIELDS = tuple(f.name for f in fields(Message))
_message_row = attrgetter(*MESSAGE_FIELDS)

_STATUS: tuple[tuple[type[PraisonDBError], int], ...] = (
    (NotFound, 404),
    (Conflict, 409),
    (ValidationError, 422),
    (ConfigError, 400),
    (SchemaOutOfDate, 503),
    (BackendUnavailable, 503),
    (DatabaseClosed, 503),
    (StorageFull, 507),
)


def status_for(exc: PraisonDBError) -> int:
    """The HTTP status of a typed error (500 for a class without one)."""
    explicit = getattr(exc, "http_status", None)
    if isinstance(explicit, int):
        return explicit
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def problem(exc: PraisonDBError, status: int | None = None) -> dict[str, Any]:
    """The problem body of ``exc``; its text is the store's (redacted) message."""
    name = next(c.__name__ for c in type(exc).__mro__ if getattr(errors, c.__name__, None) is c)
    return {
        "type": "about:blank",
        "title": name,
        "status": status or status_for(exc),
        "detail": str(exc),
        "error": name,
    }


def error_from(body: Any, status: int, where: str) -> PraisonDBError:
    """The typed error a problem body names; an unknown or missing name maps by status."""
    detail = body.get("detail") if isinstance(body, dict) else None
    name = body.get("error") if isinstance(body, dict) else None
    cls = getattr(errors, name, None) if isinstance(name, str) else None
    if not (isinstance(cls, type) and issubclass(cls, PraisonDBError)):
        cls = _by_status(status)
    text = detail if isinstance(detail, str) and detail else f"HTTP {status} from {where}"
    if cls is BackendUnavailable:
        return BackendUnavailable(f"the server's store is unavailable: {text}", url=where)
    exc = cls.__new__(cls)  # no __init__: its arguments vary by class (SchemaOutOfDate)
    Exception.__init__(exc, text)
    return exc


def _by_status(status: int) -> type[PraisonDBError]:
    if status == 404:
        return NotFound
    if status in (409, 412):
        return Conflict
    if status in (400, 413, 422):
        return ValidationError
    if status in (401, 403):
        return ConfigError
    if status in (502, 503, 504):
        return BackendUnavailable
    return PraisonDBError


def message_rows(messages: list[Message]) -> bytes:
    """``messages`` as a :data:`ROWS` body (orjson writes the aware datetimes itself)."""
    return rows_body([_message_row(m) for m in messages])


def rows_body(rows: Sequence[Sequence[Any]]) -> bytes:
    """A :data:`ROWS` body of rows already in ``MESSAGE_FIELDS`` order."""
    return orjson.dumps({"fields": MESSAGE_FIELDS, "rows": rows})


def segment(value: str) -> str:
    """One path segment holding ``value`` exactly: every reserved character escaped, and
    ``.``/``..`` too (HTTP clients would resolve them as dot segments)."""
    text = quote(value, safe="")
    if text in {".", ".."}:
        return text.replace(".", "%2E")
    return text


def route_path(raw_path: bytes) -> str:
    """The path to route on: percent-decoded except ``%2F`` and ``%25``, so an escaped
    slash stays inside its segment; :func:`param` decodes those two afterwards."""
    text = raw_path.decode("latin-1")
    text = text.replace("%25", "%2525").replace("%2F", "%252F").replace("%2f", "%252F")
    return unquote(text, errors="strict")


def param(value: str) -> str:
    """A path parameter routed by :func:`route_path`, fully decoded."""
    return unquote(value, errors="strict")


__all__ = [
    "CLOCK_HEADER",
    "MAX_PAGE",
    "MESSAGE_FIELDS",
    "NDJSON",
    "PROBLEM",
    "ROWS",
    "error_from",
    "message_rows",
    "param",
    "problem",
    "route_path",
    "rows_body",
    "segment",
    "status_for",
]
