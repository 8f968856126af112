"""The :class:`~praisondb.stores.base.WholeSessionLoader` half of the HTTP store.

``load_sessions`` sends whole sessions (records, messages, runs, checkpoints, spans) to
``POST /bulk/sessions`` (praisondb/server/bulk.py), as few requests as the server's
``--max-body`` allows: the limit is read once from ``/readyz`` and every body is cut to
fit it, so a batch is never refused for its size. Re-sending is safe (the server leaves
sessions it holds untouched and names them), so the transport retries a lost reply.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import orjson

from ...codec import to_record
from ...errors import ValidationError
from ..base import Loaded, WholeSession
from .transport import Transport

PATH = "/bulk/sessions"
FALLBACK_MAX_BODY = 1024 * 1024
"""The body size aimed at when a server does not announce its ``max_body``."""
_HEAD, _TAIL = b'{"sessions":[', b"]}"


def encode(item: WholeSession) -> bytes:
    """One ``WholeSession`` as the body's JSON item."""
    return orjson.dumps(
        {
            "session": to_record(item.info),
            "messages": [to_record(m) for m in item.messages],
            "runs": [to_record(r) for r in item.runs],
            "checkpoints": [to_record(c) for c in item.checkpoints],
            "spans": [to_record(s) for s in item.spans],
        }
    )


def bodies(items: Sequence[WholeSession], limit: int) -> Iterator[bytes]:
    """Request bodies of at most ``limit`` bytes holding ``items`` in order."""
    parts: list[bytes] = []
    size = len(_HEAD) + len(_TAIL)
    for item in items:
        part = encode(item)
        if len(_HEAD) + len(part) + len(_TAIL) > limit:
            raise ValidationError(
                f"session {item.info.id!r} takes {len(part)} bytes, more than the server "
                f"accepts in one request ({limit} bytes): start the server with a larger "
                "--max-body"
            )
        if parts and size + len(part) + 1 > limit:
            yield _HEAD + b",".join(parts) + _TAIL
            parts, size = [], len(_HEAD) + len(_TAIL)
        parts.append(part)
        size += len(part) + 1
    if parts:
        yield _HEAD + b",".join(parts) + _TAIL


class _Bulk:
    _http: Transport
    _max_body: int | None = None

    def load_sessions(self, items: Sequence[WholeSession]) -> Loaded:
        inserted = 0
        present: list[str] = []
        for body in bodies(items, self._body_limit()):
            reply = orjson.loads(self._http.request("POST", PATH, content=body).content)
            inserted += int(reply["inserted"])
            present += reply["present"]
        return Loaded(inserted, present)

    def _body_limit(self) -> int:
        """The server's ``max_body`` (asked once; every server since the bulk route says)."""
        if self._max_body is None:
            said = orjson.loads(self._http.request("GET", "/readyz").content).get("max_body")
            self._max_body = said if isinstance(said, int) and said > 0 else FALLBACK_MAX_BODY
        return self._max_body


__all__ = ["bodies", "encode"]
