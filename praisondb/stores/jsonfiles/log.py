"""The message log of the JSON-files store: how batches are framed and read back.

A log is JSON Lines in seq order. Readers only read the committed part, the first
``log_size`` bytes recorded in ``session.json``, which holds whole batches only.
Past it may be an append in flight, or what a dead writer left: every line of a
batch but the last carries ``"more": 1``, so the store can tell a whole batch (to
count) from a cut one (a write cut short by a crash or a full disk; to truncate).
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from .codec import is_message_record
from .files import complete_lines, dumps, lines_backward, loads_line, read_range

log = logging.getLogger("praisondb.jsonfiles")

# Starts with a literal, so the engine searches for it instead of trying every offset.
_ID_LINE = re.compile(r'\n\{"id":"([^"\\\n]*)"')
_BISECT_MIN_BYTES = 1 << 16


def encode_batch(records: list[dict[str, Any]]) -> bytes:
    """All lines of one batch; all but the last say ``more`` so a cut batch is detectable."""
    last = len(records) - 1
    return b"".join(
        dumps({**r, "more": 1} if i < last else r, f"message {r['id']!r}") + b"\n"
        for i, r in enumerate(records)
    )


def complete_batches(data: bytes) -> tuple[int, list[dict[str, Any]]]:
    """Records of the whole batches at the start of ``data``, and where they end.

    Stops at the first damaged line: nothing valid can follow it, since every
    append repairs the tail first.
    """
    records: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []
    pos = good_end = 0
    while True:
        newline = data.find(b"\n", pos)
        if newline < 0:
            break
        record = loads_line(data[pos:newline])
        if record is None or not is_message_record(record):
            break
        pos = newline + 1
        pending.append(record)
        if not record.get("more"):
            records += pending
            pending = []
            good_end = pos
    return good_end, records


def _parse(line: bytes) -> dict[str, Any] | None:
    record = loads_line(line)
    if record is None or not is_message_record(record):
        log.warning("skipping a damaged line in a message log: %r", line[:80])
        return None
    record.pop("more", None)
    return record


def read_last(
    handle: Any, end: int, last: int, after_seq: int | None, before_seq: int | None
) -> list[dict[str, Any]]:
    """The final ``last`` records of the window, reading the committed log from its end."""
    picked: list[dict[str, Any]] = []
    for line in lines_backward(handle, end):
        record = _parse(line)
        if record is None:
            continue
        seq = record["seq"]
        if before_seq is not None and seq >= before_seq:
            continue
        if after_seq is not None and seq <= after_seq:
            break
        picked.append(record)
        if len(picked) >= last:
            break
    picked.reverse()
    return picked


def _seek_after(handle: Any, end: int, after_seq: int) -> int:
    """A line start at or before the first line with seq > after_seq (logs are in seq order)."""
    lo, hi = 0, end
    while hi - lo > _BISECT_MIN_BYTES:
        handle.seek((lo + hi) // 2)
        handle.readline()
        start = handle.tell()
        line = handle.readline()
        if start >= hi or not line.endswith(b"\n"):
            break
        record = loads_line(line)
        if record is None or not isinstance(record.get("seq"), int):
            break
        if record["seq"] > after_seq:
            hi = start
        else:
            lo = start + len(line)
    return lo


def read_forward(
    handle: Any, end: int, after_seq: int | None, before_seq: int | None, limit: int | None
) -> list[dict[str, Any]]:
    """Records of the window in seq order from the committed part of the log, [0, end)."""
    pos = 0
    if after_seq is not None and end > _BISECT_MIN_BYTES:
        pos = _seek_after(handle, end, after_seq)
    handle.seek(pos)
    out: list[dict[str, Any]] = []
    while pos < end:
        line = handle.readline(end - pos)
        if not line:
            break
        pos += len(line)
        record = _parse(line.rstrip(b"\n"))
        if record is None:
            continue
        seq = record["seq"]
        if after_seq is not None and seq <= after_seq:
            continue
        if before_seq is not None and seq >= before_seq:
            break
        out.append(record)
        if limit is not None and len(out) >= limit:
            break
    return out


def read_ids(path: str, start: int, end: int) -> list[str]:
    """Message ids of the committed lines in [start, end), without parsing whole lines.

    Every line starts with ``{"id":"`` (see message_to_json), so one regular
    expression pass finds the ids; only if some line does not match (an id with
    escapes) is each line parsed properly.
    """
    try:
        data = read_range(path, start, end)
    except FileNotFoundError:
        return []
    text = "\n" + data.decode("utf-8", errors="replace")
    ids: list[str] = _ID_LINE.findall(text)
    if len(ids) == data.count(b"\n"):
        return ids
    ids = []
    for line in complete_lines(data):
        record = loads_line(line)
        if record is not None and isinstance(record.get("id"), str):
            ids.append(record["id"])
    return ids


class IdCache:
    """Message ids per session, kept in step with the log so appends stay O(batch).

    Keyed by the log's name and the byte offset read so far; another process's
    appends are read incrementally, a rewrite (new log name) reloads everything.
    Callers hold the session lock, so one session's set is never used by two
    threads at once.
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._guard = threading.Lock()
        self._entries: OrderedDict[str, tuple[str, int, set[str]]] = OrderedDict()

    def get(self, name: str, log_name: str, size: int, read: Callable[[int], Any]) -> set[str]:
        with self._guard:
            entry = self._entries.pop(name, None)
        if entry is not None and entry[0] == log_name and entry[1] <= size:
            ids = entry[2]
            if entry[1] < size:
                ids.update(read(entry[1]))
        else:
            ids = set(read(0))
        with self._guard:
            self._entries[name] = (log_name, size, ids)
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)
        return ids

    def advance(self, name: str, log_name: str, size: int, added: set[str]) -> None:
        with self._guard:
            entry = self._entries.get(name)
            if entry is not None and entry[0] == log_name:
                entry[2].update(added)
                self._entries[name] = (log_name, size, entry[2])

    def drop(self, name: str) -> None:
        with self._guard:
            self._entries.pop(name, None)

    def clear(self) -> None:
        with self._guard:
            self._entries.clear()
