"""The OpenAPI part of authentication and remote agents, for the server's document.

:func:`with_auth` adds what auth.py and agents.py add to the API: the bearer security
scheme, the 401 and 429 answers every protected operation may give, and the agent and
session-token operations (with the link from a chat to its history, which stateful
fuzzing follows). The document builder (openapi.py) calls it, so this module stays the
only place outside agents.py that knows these routes.
"""

from __future__ import annotations

import copy
from typing import Any

from .agents import AGENT_NAME
from .auth import OPEN_PATHS
from .openapi_types import ID, problem

NAME_PATTERN = AGENT_NAME.pattern


def _path_params(*names: str) -> list[dict[str, Any]]:
    shapes = {
        "name": {"type": "string", "pattern": NAME_PATTERN},
        "id": ID,
    }
    return [{"name": n, "in": "path", "required": True, "schema": shapes[n]} for n in names]


def _errors(*statuses: int) -> dict[str, Any]:
    texts = {
        404: "not found (or another tenant's)",
        413: "body too large",
        422: "invalid input",
        503: "a store is unavailable",
    }
    return {str(s): problem(texts[s]) for s in (*statuses, 503)}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


_MESSAGE = {
    "type": "object",
    "description": "A stored message (praisondb.codec.to_record).",
    "required": ["id", "session_id", "seq", "role", "content", "created_at"],
    "properties": {
        "id": {"type": "string"},
        "session_id": {"type": "string"},
        "seq": {"type": "integer", "minimum": 1},
        "role": {"type": "string"},
        "content": {},
        "metadata": {"type": "object"},
        "run_id": {"type": ["string", "null"]},
        "created_at": {"type": "string"},
    },
}

_PATHS: dict[str, Any] = {
    "/agents/{name}/sessions/{id}/chat": {
        "post": {
            "operationId": "agentChat",
            "summary": "Send a message to a served agent; the exchange is stored in the session.",
            "parameters": _path_params("name", "id"),
            "requestBody": _body(
                {
                    "type": "object",
                    "required": ["message"],
                    "properties": {"message": {"type": "string", "minLength": 1}},
                }
            ),
            "responses": {
                "200": {
                    "description": "the agent's reply",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["reply", "session_id", "agent"],
                                "properties": {
                                    "reply": {"type": ["string", "array"]},
                                    "session_id": {"type": "string"},
                                    "agent": {"type": "string"},
                                },
                            }
                        }
                    },
                    "links": {
                        "AgentHistory": {
                            "operationId": "agentMessages",
                            "parameters": {
                                "name": "$request.path.name",
                                "id": "$request.path.id",
                            },
                        }
                    },
                },
                **_errors(404, 413, 422),
            },
        }
    },
    "/agents/{name}/sessions/{id}/messages": {
        "get": {
            "operationId": "agentMessages",
            "summary": "The conversation with a served agent (last: only the final N).",
            "parameters": [
                *_path_params("name", "id"),
                {
                    "name": "last",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "integer", "minimum": 1, "maximum": 10000},
                },
            ],
            "responses": {
                "200": {
                    "description": "the messages, oldest first",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["items"],
                                "properties": {"items": {"type": "array", "items": _MESSAGE}},
                            }
                        }
                    },
                },
                **_errors(404, 422),
            },
        }
    },
    "/sessions/{id}/token": {
        "post": {
            "operationId": "sessionToken",
            "summary": "A signed token that opens this one session (API key holders only).",
            "parameters": _path_params("id"),
            "requestBody": _body(
                {
                    "type": "object",
                    "properties": {"ttl": {"type": "integer", "minimum": 1, "maximum": 2592000}},
                }
            ),
            "responses": {
                "200": {
                    "description": "the token",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["token", "session_id", "expires_in"],
                                "properties": {
                                    "token": {"type": "string"},
                                    "session_id": {"type": "string"},
                                    "expires_in": {"type": "integer"},
                                },
                            }
                        }
                    },
                },
                "400": problem("the server issues no tokens (no --token-secret)"),
                **_errors(404, 413, 422),
            },
        }
    },
}


def with_auth(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` (openapi.py's) with the agent and token operations, the bearer scheme
    on every operation but the open ones, and their 401 and 429 answers."""
    paths = {**document["paths"], **copy.deepcopy(_PATHS)}
    for path, operations in paths.items():
        for operation in operations.values():
            if path in OPEN_PATHS:
                operation["security"] = []
                continue
            operation["responses"] = {
                **operation["responses"],
                "401": {"$ref": "#/components/responses/Unauthorized"},
                "429": {"$ref": "#/components/responses/RateLimited"},
            }
    components = document.get("components", {})
    return {
        **document,
        "paths": dict(sorted(paths.items())),
        "security": [{"bearer": []}],
        "components": {
            **components,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key (`praisondb keys create`) or a session token; "
                    "a server started without keys (loopback) ignores it.",
                }
            },
            "responses": {
                **components.get("responses", {}),
                "Unauthorized": problem("no credential, or a wrong, revoked or expired one"),
                "RateLimited": {
                    **problem("this key's rate limit is reached"),
                    "headers": {
                        "Retry-After": {
                            "description": "seconds to wait",
                            "schema": {"type": "integer"},
                        }
                    },
                },
            },
        },
    }


AGENT_PATHS = frozenset(_PATHS)
"""The paths :func:`with_auth` adds (served by agents.py, not by the core routes)."""


__all__ = ["AGENT_PATHS", "with_auth"]
