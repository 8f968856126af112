"""The OpenAPI schemas of the values the server checks, built from the checks' own rules.

Ids, scopes, keys, roles and integers are refused by :mod:`praisondb.validation` when
they break its rules; the document states the same rules (from the same constants), so a
request the document calls valid is one the app accepts and fuzzing can hold it to that.
Errors leave the app as ``application/problem+json`` (:func:`.wire.problem`), and
:func:`problem` says so.
"""

from __future__ import annotations

from typing import Any

from ..model import MEMORY_SCOPES, ROLES
from ..validation import (
    CONTROL_CHARACTERS,
    INT_MAX,
    INT_MIN,
    MAX_DEPTH,
    MAX_DIMENSIONS,
    MAX_ID_LENGTH,
    MAX_MEMORY_TEXT,
    MAX_SCOPE_LENGTH,
    SCOPE_PATTERN,
    SCOPES_NEEDING_ID,
)
from .wire import MAX_PAGE, PROBLEM

PRINTABLE = f"[^{CONTROL_CHARACTERS}]"
"""One character an id may hold (check_id: no control characters)."""
ID_PATTERN = f"^{PRINTABLE}+$"
ID: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_ID_LENGTH,
    "pattern": ID_PATTERN,
}
"""An id, user id, state key, cursor-free filter (check_id)."""
KEY_PREFIX: dict[str, Any] = {
    "type": "string",
    "maxLength": MAX_ID_LENGTH,
    "pattern": f"^{PRINTABLE}*$",
}
"""A key prefix: the key rules, but it may be empty (check_prefix)."""
OPTIONAL_ID: dict[str, Any] = {**ID, "type": ["string", "null"]}
SCOPE: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_SCOPE_LENGTH,
    # check_scope: SCOPE_PATTERN (whose ``.`` is any character) and check_id's printable
    "pattern": SCOPE_PATTERN.pattern.replace(".+", PRINTABLE + "+"),
    "not": {"enum": sorted(SCOPES_NEEDING_ID)},
}
ROLE: dict[str, Any] = {"type": "string", "enum": sorted(ROLES)}
MEMORY_SCOPE: dict[str, Any] = {"type": "string", "enum": sorted(MEMORY_SCOPES)}
INTEGER: dict[str, Any] = {"type": "integer", "minimum": INT_MIN, "maximum": INT_MAX}
"""A JSON integer every backend keeps exactly (check_int: signed 64 bits)."""
COUNT: dict[str, Any] = {"type": "integer", "minimum": 0, "maximum": INT_MAX}
"""A count, offset or sequence number (q_int's default range)."""
POSITIVE: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": INT_MAX}
PAGE_LIMIT: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}
"""A limit the server refuses above one page (rather than clipping it)."""
ETAG: dict[str, Any] = {
    "type": "string",
    # a version that fits in 64 bits: one digit fewer than INT_MAX always does
    "pattern": f'^(W/)?"[0-9]{{1,{len(str(INT_MAX)) - 1}}}"$',
}
"""An entry's ETag, ``"<version>"`` (state.py's If-Match)."""
TIMESTAMP: dict[str, Any] = {
    "type": "string",
    "format": "date-time",
    # years 2..9998: the app keeps times in UTC, and one in year 1 or 9999 with an offset
    # may leave years 1..9999 there (codec.parse_iso refuses it)
    "pattern": "^(000[2-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])-",
    "description": "RFC 3339 with an offset, in years 2 to 9998",
}
UNIT: dict[str, Any] = {"type": "number", "minimum": 0, "maximum": 1}
VECTOR: dict[str, Any] = {
    "type": "array",
    "items": {"type": "number"},
    "minItems": 1,
    "maxItems": MAX_DIMENSIONS,
}
"""An embedding (check_vector)."""
MEMORY_TEXT: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_MEMORY_TEXT,
    "pattern": "^[^\\x00]*[^\\s\\x00][^\\x00]*$",
    "description": "not blank, no NUL (check_memory_text)",
}


def _schema(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


JSON_VALUE = _schema("JSONValue")
JSON_OBJECT = _schema("JSONObject")
JSON_SCHEMAS: dict[str, Any] = {
    "JSONValue": {
        "description": "JSON data every store keeps exactly (check_json): integers in "
        f"signed 64 bits, at most {MAX_DEPTH} objects and arrays deep",
        "anyOf": [
            {"type": ["string", "boolean", "null"]},
            INTEGER,
            {"type": "number", "not": {"type": "integer"}},
            {"type": "array", "items": JSON_VALUE},
            JSON_OBJECT,
        ],
    },
    "JSONObject": {"type": "object", "additionalProperties": JSON_VALUE},
}
"""Components: metadata, state values and content blocks are JSON data (check_json)."""


def problem(description: str) -> dict[str, Any]:
    """An error answer: an RFC 9457 problem body, as :func:`._http.error_response` sends."""
    return {
        "description": description,
        "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


__all__ = [
    "COUNT",
    "ETAG",
    "ID",
    "ID_PATTERN",
    "INTEGER",
    "JSON_OBJECT",
    "JSON_SCHEMAS",
    "JSON_VALUE",
    "KEY_PREFIX",
    "MEMORY_SCOPE",
    "MEMORY_TEXT",
    "OPTIONAL_ID",
    "PAGE_LIMIT",
    "POSITIVE",
    "PRINTABLE",
    "ROLE",
    "SCOPE",
    "TIMESTAMP",
    "UNIT",
    "VECTOR",
    "problem",
]
