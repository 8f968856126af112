"""The record grammar of an archive, walked once for every reader.

After the header line come session blocks (``session``, its ``run``/``checkpoint``/
``span`` records, its ``message`` records in rising seq, ``session_end`` with count and
digest) and ``state`` records outside them, then one ``end`` record with the totals.
:class:`RecordWalk` reads the lines, checks each against that grammar and yields the
records that pass, parsed, with their line numbers; every deviation goes to a ``note``
callback instead. The scan counts what it yields; the import groups it into sessions.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import orjson

from ...errors import ValidationError
from .records import (
    GZIP_MAGIC,
    MessageDigest,
    parse_checkpoint,
    parse_memory,
    parse_message,
    parse_run,
    parse_session,
    parse_span,
    parse_state,
)

Note = Callable[[int, str, str | None], None]
"""``(line, reason, session id or None)``: where a walk reports a damaged line."""

CHILD_KINDS = ("run", "checkpoint", "span")
_CHILD_PARSERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "run": parse_run,
    "checkpoint": parse_checkpoint,
    "span": parse_span,
}


def open_read(path: Path) -> IO[bytes]:
    """The archive's bytes, decompressed if it starts like gzip."""
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == GZIP_MAGIC:
        return cast(IO[bytes], gzip.open(path, "rb"))
    return open(path, "rb")


def lines(path: Path) -> Iterator[tuple[int, bytes | None, str | None]]:
    """(line number, raw line or None, error) -- a broken gzip stream is one error line."""
    number = 0
    with open_read(path) as handle:
        try:
            for number, line in enumerate(handle, start=1):
                yield number, line, None
        except (EOFError, OSError, zlib.error) as exc:
            yield number + 1, None, f"compressed data is damaged or cut short ({exc})"


def parse_line(line: bytes) -> dict[str, Any]:
    """One line as a JSON object, or a ValidationError saying what is wrong with it."""
    if not line.endswith(b"\n"):
        raise ValidationError("the line is cut short (no newline at the end)")
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"not valid JSON ({exc})") from None
    if not isinstance(record, dict):
        raise ValidationError("a record must be a JSON object")
    return record


@dataclass(frozen=True)
class Record:
    """One record that fits the grammar: its line, type, parsed value and session block."""

    line: int
    kind: str
    value: Any
    """The model object (SessionInfo, Run, Checkpoint, Span, Message, StateEntry) or, for
    ``session_end`` and ``end``, the raw record."""
    session: str | None


@dataclass
class _Block:
    id: str
    first_line: int
    digest: MessageDigest = field(default_factory=MessageDigest)
    damaged: bool = False


class RecordWalk:
    """One pass over an archive's records; iterate it, then read its totals.

    ``digests=False`` counts a block's messages without hashing them (the import, after
    a scan that checked the digests).
    """

    def __init__(self, path: Path, note: Note, *, digests: bool = True) -> None:
        self.path = path
        self._note = note
        self._digests = digests
        self.sessions = 0
        """Session blocks that closed intact."""
        self.messages = 0
        self.state_entries = 0
        self.memories = 0
        self.bytes = 0
        self.ended = False
        self.damage = 0
        self._block: _Block | None = None
        self._seen: set[str] = set()

    def note(self, line: int, reason: str, session: str | None) -> None:
        self.damage += 1
        self._note(line, reason, session)

    def __iter__(self) -> Iterator[Record]:
        number = 0
        for number, line, error in lines(self.path):
            if number == 1 and line is not None:
                continue  # the header, read and checked on its own
            if line is None:
                self.note(number, error or "unreadable", self._block_id())
                self._block = None
                break
            self.bytes += len(line)
            record = self._read(number, line)
            if record is not None:
                yield record
        else:
            number = 0
        self._finish(number)

    def _read(self, number: int, line: bytes) -> Record | None:
        """The line's record if it fits the grammar; else it is noted and None."""
        if self.ended:
            self.note(number, "data after the end record", None)
            return None
        try:
            raw = parse_line(line)
        except ValidationError as exc:
            self._damage(number, str(exc), None)
            return None
        try:
            return self._step(number, raw)
        except ValidationError as exc:
            self._damage(number, str(exc), raw)
            return None

    def _damage(self, number: int, reason: str, raw: dict[str, Any] | None) -> None:
        block = self._block
        self.note(number, reason, block.id if block else _session_of(raw) if raw else None)
        if block is not None:
            block.damaged = True

    def _step(self, number: int, raw: dict[str, Any]) -> Record:
        kind = raw.get("type")
        if kind == "session":
            return self._session(number, raw)
        if kind in CHILD_KINDS:
            return self._child(number, raw, str(kind))
        if kind == "message":
            return self._message(number, raw)
        if kind == "session_end":
            return self._session_end(number, raw)
        if kind in ("state", "memory", "end"):
            if self._block is not None:
                raise ValidationError(f"{kind} record inside a session block")
            if kind == "memory":
                return self._memory(number, raw)
            return self._state(number, raw) if kind == "state" else self._end(number, raw)
        raise ValidationError(f"unknown record type {kind!r}")

    def _block_id(self) -> str | None:
        return self._block.id if self._block else None

    def _session(self, number: int, raw: dict[str, Any]) -> Record:
        if self._block is not None:
            self.note(number, "previous session has no session_end", self._block.id)
        sid = raw.get("id") if isinstance(raw.get("id"), str) else None
        block = self._block = _Block(sid or f"<line {number}>", number)
        info = parse_session(raw)
        if block.id in self._seen:
            raise ValidationError("session appears twice in the archive")
        self._seen.add(block.id)
        return Record(number, "session", info, block.id)

    def _child(self, number: int, raw: dict[str, Any], kind: str) -> Record:
        block = self._block
        if block is None:
            raise ValidationError(f"{kind} record outside a session block")
        parsed = _CHILD_PARSERS[kind](raw)
        if parsed.session_id != block.id:
            raise ValidationError(f"{kind} belongs to session {parsed.session_id!r}")
        if block.digest.count:
            raise ValidationError(f"{kind} record after the session's messages")
        return Record(number, kind, parsed, block.id)

    def _message(self, number: int, raw: dict[str, Any]) -> Record:
        block = self._block
        if block is None:
            raise ValidationError("message outside a session block")
        message = parse_message(raw)
        if message.session_id != block.id:
            raise ValidationError(f"message belongs to session {message.session_id!r}")
        digest = block.digest
        if message.seq <= digest.last_seq:
            raise ValidationError(f"seq {message.seq} is not above the previous {digest.last_seq}")
        if self._digests:
            digest.add(message)
        else:
            digest.count, digest.last_seq = digest.count + 1, message.seq
        self.messages += 1
        return Record(number, "message", message, block.id)

    def _session_end(self, number: int, raw: dict[str, Any]) -> Record:
        block = self._block
        if block is None:
            raise ValidationError("session_end outside a session")
        if raw.get("id") != block.id:
            raise ValidationError(f"session_end for {raw.get('id')!r} closes {block.id!r}")
        if raw.get("messages") != block.digest.count:
            raise ValidationError(
                f"session_end says {raw.get('messages')} messages, the block has "
                f"{block.digest.count} readable ones"
            )
        if self._digests and not block.damaged and raw.get("digest") != block.digest.hexdigest():
            raise ValidationError("message digest does not match: a message was altered")
        if not block.damaged:
            self.sessions += 1
        self._block = None
        return Record(number, "session_end", raw, block.id)

    def _state(self, number: int, raw: dict[str, Any]) -> Record:
        entry = parse_state(raw)
        self.state_entries += 1
        return Record(number, "state", entry, None)

    def _memory(self, number: int, raw: dict[str, Any]) -> Record:
        item = parse_memory(raw)
        self.memories += 1
        return Record(number, "memory", item, None)

    def _end(self, number: int, raw: dict[str, Any]) -> Record:
        counts = (raw.get("sessions"), raw.get("messages"), raw.get("state"))
        totals = (self.sessions, self.messages, self.state_entries)
        if self.damage == 0 and counts != totals:
            raise ValidationError(
                f"end record counts {counts} do not match the archive "
                f"({totals[0]}, {totals[1]}, {totals[2]})"
            )
        if self.damage == 0 and raw.get("memories", 0) != self.memories:  # version 1: none
            raise ValidationError(
                f"end record counts {raw.get('memories')} memories, the archive has {self.memories}"
            )
        self.ended = True
        return Record(number, "end", raw, None)

    def _finish(self, number: int) -> None:
        """What only the end of the file shows: an open block, a missing end record."""
        if self._block is not None:
            block = self._block
            self.note(block.first_line, "session block is cut short (no session_end)", block.id)
        if not self.ended:
            self.note(
                number + 1 if number else 1,
                "the archive ends without its end record (truncated?)",
                None,
            )


def _session_of(record: dict[str, Any]) -> str | None:
    sid = record.get("session_id", record.get("id") if record.get("type") == "session" else None)
    return sid if isinstance(sid, str) else None
