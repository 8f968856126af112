"""How a LangGraph thread is laid out as state entries of one praisondb session.

Everything lives in the session's own scope, ``session:<id>``, under ``langgraph/``, so
``praisondb copy/export/import/verify``, ``sessions delete`` and retention cleanup move or
remove it with the session and no new store API:

==============================================  ===========================================
key                                             value
==============================================  ===========================================
``langgraph/head/<ns>``                         the namespace's latest checkpoint id and a
                                                copy of its record (a resume reads one
                                                entry); its compare-and-set fences racing
                                                writers
``langgraph/cp/<ns>/<inverted checkpoint id>``  checkpoint (serde-typed), metadata, parent,
                                                small channel values inline
``langgraph/blob/<ns>/<channel>/<version>``     one channel value at one version
``langgraph/writes/<ns>/<checkpoint id>``       every pending write of one checkpoint
``langgraph/run/<run id>``                      the run wrote checkpoints of this thread
                                                (``delete_for_runs`` finds threads by it)
==============================================  ===========================================

The run index lives in the thread's own scope like everything else, so a copy of one
session carries it and deleting the session removes it. Checkpoint ids (UUIDv6, time-ordered hex) are stored with each hex
digit inverted, so the store's ascending key order is newest first: the latest
``limit`` checkpoints are one prefix read. A part that is long or odd (a nested
namespace, a channel name) is percent-encoded, or hashed when still long; the full text
is always in the value, so a key is only an address.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any
from urllib.parse import quote

from ...errors import ValidationError
from ...validation import check_id

PREFIX = "langgraph/"
HEADS = PREFIX + "head/"
CHECKPOINTS = PREFIX + "cp/"
BLOBS = PREFIX + "blob/"
WRITES = PREFIX + "writes/"
RUNS = PREFIX + "run/"
MAPPED = "lg~"
"""Session ids of thread ids praisondb refuses as ids start with this (see session_id)."""
_PART_LIMIT = 64
_INVERT = str.maketrans("0123456789abcdef", "fedcba9876543210")


def part(text: str) -> str:
    """``text`` as one key segment: no ``/``, at most 64 characters, distinct per text."""
    quoted = quote(text, safe="")
    if len(quoted) <= _PART_LIMIT:
        return quoted
    return "#" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def inverted(checkpoint_id: str) -> str:
    """The id with each hex digit d replaced by 15 - d: ascending keys, newest ids first."""
    return part(checkpoint_id).translate(_INVERT)


def session_id(thread_id: str) -> str:
    """The praisondb session id of a LangGraph thread id.

    Thread ids praisondb accepts as ids map to themselves. Others (empty, longer than
    255 characters, control characters) and ids that already start with ``lg~`` map to
    ``lg~`` + a SHA-256 of the thread id; the thread id itself is kept in every record and
    in the session's metadata (``langgraph_thread_id``), so the mapping is reversible."""
    try:
        if not thread_id.startswith(MAPPED):
            return check_id(thread_id, "thread id")
    except ValidationError:
        pass
    digest = hashlib.sha256(thread_id.encode("utf-8", "surrogatepass")).hexdigest()
    return MAPPED + digest[:48]


def scope_of(thread_id: str) -> str:
    return f"session:{session_id(thread_id)}"


def head_key(ns: str) -> str:
    return f"{HEADS}{part(ns)}"


def checkpoints_prefix(ns: str) -> str:
    return f"{CHECKPOINTS}{part(ns)}/"


def checkpoint_key(ns: str, checkpoint_id: str) -> str:
    return f"{checkpoints_prefix(ns)}{inverted(checkpoint_id)}"


def blob_key(ns: str, channel: str, version: Any) -> str:
    return f"{BLOBS}{part(ns)}/{part(channel)}/{part(str(version))}"


def writes_prefix(ns: str) -> str:
    return f"{WRITES}{part(ns)}/"


def writes_key(ns: str, checkpoint_id: str) -> str:
    return f"{writes_prefix(ns)}{part(checkpoint_id)}"


def run_key(run_id: str) -> str:
    return f"{RUNS}{part(run_id)}"


# -- values through the saver's serde, never pickle -------------------------------------
PICKLE_REFUSED = (
    "praisondb never stores or loads pickle (loading a pickle runs code): "
    "keep graph state to what LangGraph's JsonPlusSerializer writes without it "
    "(JSON data, dataclasses, pydantic models, LangChain messages, enums, datetimes, ...)"
)


def pack(serde: Any, value: Any, what: str) -> list[str]:
    """``[type, base64 data]`` from ``serde.dumps_typed``: JSON for every store."""
    try:
        kind, data = serde.dumps_typed(value)
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"{what} is a {type(value).__name__}, which the checkpoint serializer cannot "
            f"encode without pickle ({exc}); {PICKLE_REFUSED}"
        ) from None
    if kind == "pickle":
        raise ValidationError(f"the serializer turned {what} into pickle; {PICKLE_REFUSED}")
    return [kind, base64.b64encode(bytes(data)).decode("ascii")]


def unpack(serde: Any, packed: Any, what: str) -> Any:
    """The value ``pack`` stored."""
    try:
        kind, data = packed
        raw = base64.b64decode(data, validate=True)
    except (TypeError, ValueError, binascii.Error):
        raise ValidationError(
            f"{what} is not a [type, base64] pair praisondb wrote: {packed!r:.80}; "
            "the record was changed outside praisondb"
        ) from None
    if kind == "pickle":
        raise ValidationError(f"{what} is stored as pickle; {PICKLE_REFUSED}")
    return serde.loads_typed((kind, raw))
