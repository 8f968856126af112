"""The praisondb archive: JSON Lines (optionally gzip), one header line, one record per line.

The format is a promise to every future release (see ``docs/archive-format.md``): a
reader accepts every version up to :data:`FORMAT_VERSION` and refuses newer ones with a
clear message. Each session is a block that ends with a ``session_end`` record carrying
its message count and digest, and the archive ends with an ``end`` record, so a
truncated or edited file is caught line by line before anything is imported.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, cast

import orjson

from .archive_records import (
    ArchiveError,
    MessageDigest,
    canonical_message,
    checkpoint_record,
    iso,
    message_record,
    parse_checkpoint,
    parse_message,
    parse_run,
    parse_session,
    parse_span,
    parse_state,
    run_record,
    session_record,
    span_record,
    state_record,
)
from .errors import ValidationError
from .model import Checkpoint, Message, Run, SessionInfo, Span, StateEntry

FORMAT_NAME = "praisondb.archive"
FORMAT_VERSION = 1
GZIP_MAGIC = b"\x1f\x8b"
MAX_REPORTED_DAMAGE = 50
STATE_BATCH = 1000


# -- writing -----------------------------------------------------------------------


class ArchiveWriter:
    """Writes an archive to ``<path>.partial`` and renames it into place on :meth:`close`.

    So a crashed export never leaves a file that looks finished; and even a file cut
    short by other means is caught on reading, as it lacks its ``end`` record.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        compress: bool | None = None,
        header: dict[str, Any] | None = None,
    ) -> None:
        self.path = Path(path)
        self.compress = self.path.name.endswith(".gz") if compress is None else compress
        self._partial = self.path.with_name(self.path.name + ".partial")
        raw = open(self._partial, "wb")  # noqa: SIM115 - closed in close()/abort()
        self._raw = raw
        self._out: IO[bytes] = (
            cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0))
            if self.compress
            else raw
        )
        self.bytes_written = 0
        self.sessions = 0
        self.messages = 0
        self.state_entries = 0
        self._block: tuple[str, MessageDigest] | None = None
        self._closed = False
        self._write(
            {
                "format": FORMAT_NAME,
                "version": FORMAT_VERSION,
                "created_at": iso(datetime.now(timezone.utc)),
                **(header or {}),
            }
        )

    def _write(self, record: dict[str, Any]) -> None:
        line = orjson.dumps(record) + b"\n"
        self._out.write(line)
        self.bytes_written += len(line)

    def begin_session(
        self,
        info: SessionInfo,
        runs: list[Run],
        checkpoints: list[Checkpoint],
        spans: list[Span],
    ) -> None:
        if self._block is not None:
            raise RuntimeError("begin_session while another session is open")
        self._write(session_record(info))
        for run in runs:
            self._write(run_record(run))
        for checkpoint in checkpoints:
            self._write(checkpoint_record(checkpoint))
        for span in spans:
            self._write(span_record(span))
        self._block = (info.id, MessageDigest())

    def write_messages(self, messages: list[Message]) -> None:
        assert self._block is not None, "write_messages outside a session"
        digest = self._block[1]
        for message in messages:
            record = message_record(message)
            self._write(record)
            digest.add(message)
        self.messages += len(messages)

    def end_session(self) -> None:
        assert self._block is not None, "end_session outside a session"
        session_id, digest = self._block
        self._write(
            {
                "type": "session_end",
                "id": session_id,
                "messages": digest.count,
                "last_seq": digest.last_seq,
                "digest": digest.hexdigest(),
            }
        )
        self._block = None
        self.sessions += 1

    def write_state(self, entries: list[StateEntry]) -> None:
        for entry in entries:
            self._write(state_record(entry))
        self.state_entries += len(entries)

    def close(self) -> None:
        """Write the ``end`` record, flush to disk and move the file into place."""
        if self._closed:
            return
        if self._block is not None:
            raise RuntimeError("close() with a session still open")
        self._write(
            {
                "type": "end",
                "sessions": self.sessions,
                "messages": self.messages,
                "state": self.state_entries,
            }
        )
        if self._out is not self._raw:
            self._out.close()  # finishes the gzip stream; leaves the file open
        self._raw.flush()
        os.fsync(self._raw.fileno())
        self._raw.close()
        os.replace(self._partial, self.path)
        self._closed = True

    def abort(self) -> None:
        """Drop the partial file (after an error)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._out.close()
            self._raw.close()
        finally:
            self._partial.unlink(missing_ok=True)


# -- reading -----------------------------------------------------------------------


@dataclass
class Damage:
    line: int
    reason: str
    session_id: str | None = None

    def __str__(self) -> str:
        where = f" (session {self.session_id})" if self.session_id else ""
        return f"line {self.line}{where}: {self.reason}"


@dataclass
class ArchiveScan:
    """What a full read of an archive found, before anything is imported."""

    header: dict[str, Any]
    sessions: int = 0
    messages: int = 0
    state_entries: int = 0
    bytes: int = 0
    complete: bool = False
    damage: list[Damage] = field(default_factory=list)
    damage_count: int = 0
    damaged_sessions: set[str] = field(default_factory=set)
    damaged_lines: set[int] = field(default_factory=set)
    """Lines of damaged records outside session blocks (state), skipped on import."""

    @property
    def ok(self) -> bool:
        return self.damage_count == 0

    def note(self, line: int, reason: str, session_id: str | None = None) -> None:
        self.damage_count += 1
        if len(self.damage) < MAX_REPORTED_DAMAGE:
            self.damage.append(Damage(line, reason, session_id))
        if session_id is not None:
            self.damaged_sessions.add(session_id)
        else:
            self.damaged_lines.add(line)


def _open_read(path: Path) -> IO[bytes]:
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == GZIP_MAGIC:
        return cast(IO[bytes], gzip.open(path, "rb"))
    return open(path, "rb")


def _lines(path: Path) -> Iterator[tuple[int, bytes | None, str | None]]:
    """(line number, raw line or None, error) -- a broken gzip stream is one error line."""
    number = 0
    with _open_read(path) as handle:
        try:
            for number, line in enumerate(handle, start=1):
                yield number, line, None
        except (EOFError, OSError, zlib.error) as exc:
            yield number + 1, None, f"compressed data is damaged or cut short ({exc})"


def _parse_line(line: bytes) -> dict[str, Any]:
    if not line.endswith(b"\n"):
        raise ValidationError("the line is cut short (no newline at the end)")
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"not valid JSON ({exc})") from None
    if not isinstance(record, dict):
        raise ValidationError("a record must be a JSON object")
    return record


def read_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The header, checked: the right format and a version this praisondb can read."""
    path = Path(path)
    if not path.is_file():
        raise ArchiveError(f"{path}: no such archive file")
    for number, line, error in _lines(path):
        if line is None:
            raise ArchiveError(f"{path}: line {number}: {error}")
        try:
            header = _parse_line(line)
        except ValidationError as exc:
            raise ArchiveError(f"{path}: line 1 is not a praisondb archive header: {exc}") from None
        return check_header(header, path)
    raise ArchiveError(f"{path}: the file is empty, not a praisondb archive")


def check_header(header: dict[str, Any], path: Path) -> dict[str, Any]:
    if header.get("format") != FORMAT_NAME:
        raise ArchiveError(
            f"{path}: line 1 is not a praisondb archive header (format {header.get('format')!r}, "
            f"expected {FORMAT_NAME!r})"
        )
    version = header.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ArchiveError(f"{path}: the header has an invalid version {version!r}")
    if version > FORMAT_VERSION:
        raise ArchiveError(
            f"{path}: archive format version {version} is newer than this praisondb can read "
            f"(up to {FORMAT_VERSION}); upgrade praisondb to import it"
        )
    return header


@dataclass
class SessionBlock:
    """One session read from an archive; ``messages()`` streams its messages once."""

    info: SessionInfo
    runs: list[Run]
    checkpoints: list[Checkpoint]
    spans: list[Span]
    first_line: int
    _messages: Iterator[Message] | None = None

    def messages(self) -> Iterator[Message]:
        stream, self._messages = self._messages, None
        if stream is None:
            raise RuntimeError("the messages of an archive session can be read only once")
        return stream


class ArchiveReader:
    """Reads an archive in two passes: :meth:`scan` checks every line, :meth:`blocks` yields.

    Nothing is imported before the scan has seen the whole file, so a damaged line is
    reported with its number before any of its session reaches a store.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.header = read_header(self.path)

    def scan(self) -> ArchiveScan:
        result = ArchiveScan(self.header)
        block: _ScanBlock | None = None
        ended = False
        seen: set[str] = set()
        for number, line, error in _lines(self.path):
            if number == 1 and line is not None:
                continue
            if line is None:
                result.note(number, error or "unreadable", block.id if block else None)
                block = None
                break
            result.bytes += len(line)
            if ended:
                result.note(number, "data after the end record")
                continue
            try:
                record = _parse_line(line)
            except ValidationError as exc:
                result.note(number, str(exc), block.id if block else None)
                if block is not None:
                    block.damaged = True
                continue
            kind = record.get("type")
            try:
                if kind == "session":
                    if block is not None:
                        result.note(number, "previous session has no session_end", block.id)
                    sid = record.get("id") if isinstance(record.get("id"), str) else None
                    block = _ScanBlock(sid or f"<line {number}>", number)
                    parse_session(record)
                    if block.id in seen:
                        raise ValidationError("session appears twice in the archive")
                    seen.add(block.id)
                elif kind in ("run", "checkpoint", "span"):
                    self._scan_child(record, kind, block)
                elif kind == "message":
                    self._scan_message(record, block, result)
                elif kind == "session_end":
                    if block is None:
                        raise ValidationError("session_end outside a session")
                    self._scan_end(record, block)
                    if not block.damaged:
                        result.sessions += 1
                    block = None
                elif kind == "state":
                    if block is not None:
                        raise ValidationError("state record inside a session block")
                    parse_state(record)
                    result.state_entries += 1
                elif kind == "end":
                    if block is not None:
                        raise ValidationError("end record inside a session block")
                    self._scan_final(record, result)
                    ended = True
                else:
                    raise ValidationError(f"unknown record type {kind!r}")
            except ValidationError as exc:
                sid = block.id if block else _session_of(record)
                result.note(number, str(exc), sid)
                if block is not None:
                    block.damaged = True
        else:
            number = 0
        if block is not None:
            result.note(block.first_line, "session block is cut short (no session_end)", block.id)
        if not ended:
            result.note(
                number + 1 if number else 1,
                "the archive ends without its end record (truncated?)",
            )
        result.complete = ended
        return result

    @staticmethod
    def _scan_child(record: dict[str, Any], kind: str, block: _ScanBlock | None) -> None:
        if block is None:
            raise ValidationError(f"{kind} record outside a session block")
        parsed: Run | Checkpoint | Span = (
            parse_run(record)
            if kind == "run"
            else parse_checkpoint(record)
            if kind == "checkpoint"
            else parse_span(record)
        )
        if parsed.session_id != block.id:
            raise ValidationError(f"{kind} belongs to session {parsed.session_id!r}")
        if block.digest.count:
            raise ValidationError(f"{kind} record after the session's messages")

    @staticmethod
    def _scan_message(
        record: dict[str, Any], block: _ScanBlock | None, result: ArchiveScan
    ) -> None:
        if block is None:
            raise ValidationError("message outside a session block")
        message = parse_message(record)
        if message.session_id != block.id:
            raise ValidationError(f"message belongs to session {message.session_id!r}")
        if message.seq <= block.digest.last_seq:
            raise ValidationError(
                f"seq {message.seq} is not above the previous {block.digest.last_seq}"
            )
        block.digest.add(message)
        result.messages += 1

    @staticmethod
    def _scan_end(record: dict[str, Any], block: _ScanBlock) -> None:
        if record.get("id") != block.id:
            raise ValidationError(f"session_end for {record.get('id')!r} closes {block.id!r}")
        if record.get("messages") != block.digest.count:
            raise ValidationError(
                f"session_end says {record.get('messages')} messages, the block has "
                f"{block.digest.count} readable ones"
            )
        if not block.damaged and record.get("digest") != block.digest.hexdigest():
            raise ValidationError("message digest does not match: a message was altered")

    @staticmethod
    def _scan_final(record: dict[str, Any], result: ArchiveScan) -> None:
        counts = (record.get("sessions"), record.get("messages"), record.get("state"))
        if result.ok and counts != (result.sessions, result.messages, result.state_entries):
            raise ValidationError(
                f"end record counts {counts} do not match the archive "
                f"({result.sessions}, {result.messages}, {result.state_entries})"
            )

    def blocks(self, scan: ArchiveScan | None = None) -> Iterator[SessionBlock | list[StateEntry]]:
        """Session blocks and batches of state entries, in file order.

        Pass the :class:`ArchiveScan` of a damaged archive to skip what it found
        damaged; without one, any damage raises :class:`ArchiveError`. A block's
        messages must be consumed (or abandoned) before asking for the next item.
        """
        skip_sessions = scan.damaged_sessions if scan else set()
        skip_lines = scan.damaged_lines if scan else set()
        tolerant = scan is not None and not scan.ok
        lines = _lines(self.path)
        next(lines, None)

        def records() -> Iterator[tuple[int, dict[str, Any]]]:
            for number, line, error in lines:
                if line is None:
                    if tolerant:
                        return
                    raise ArchiveError(f"{self.path}: line {number}: {error}")
                try:
                    yield number, _parse_line(line)
                except ValidationError as exc:
                    if not tolerant:
                        raise ArchiveError(f"{self.path}: line {number}: {exc}") from None

        stream = records()
        pending: tuple[int, dict[str, Any]] | None = None
        state_batch: list[StateEntry] = []
        while True:
            item = pending if pending is not None else next(stream, None)
            pending = None
            if item is None:
                break
            number, record = item
            kind = record.get("type")
            if kind == "state":
                if number not in skip_lines:
                    state_batch.append(parse_state(record))
                if len(state_batch) >= STATE_BATCH:
                    yield state_batch
                    state_batch = []
                continue
            if kind != "session" or record.get("id") in skip_sessions:
                continue  # the end record, or the lines of a skipped block
            info = parse_session(record)
            children: list[dict[str, Any]] = []
            while True:
                pending = next(stream, None)
                if pending is None or pending[1].get("type") not in ("run", "checkpoint", "span"):
                    break
                children.append(pending[1])
            first, pending = pending, None
            tail: list[tuple[int, dict[str, Any]] | None] = [None]

            def block_messages(
                item: tuple[int, dict[str, Any]] | None = first,
                tail: list[tuple[int, dict[str, Any]] | None] = tail,
            ) -> Iterator[Message]:
                while item is not None and item[1].get("type") == "message":
                    yield parse_message(item[1])
                    item = next(stream, None)
                tail[0] = item

            messages = block_messages()
            yield SessionBlock(
                info,
                [parse_run(r) for r in children if r["type"] == "run"],
                [parse_checkpoint(r) for r in children if r["type"] == "checkpoint"],
                [parse_span(r) for r in children if r["type"] == "span"],
                number,
                messages,
            )
            for _ in messages:
                pass  # drain what the consumer did not read
            if tail[0] is not None and tail[0][1].get("type") != "session_end":
                pending = tail[0]
        if state_batch:
            yield state_batch


def _session_of(record: dict[str, Any]) -> str | None:
    sid = record.get("session_id", record.get("id") if record.get("type") == "session" else None)
    return sid if isinstance(sid, str) else None


@dataclass
class _ScanBlock:
    id: str
    first_line: int
    digest: MessageDigest = field(default_factory=MessageDigest)
    damaged: bool = False


def is_archive_path(text: str) -> bool:
    """True for an existing file that starts like an archive (plain or gzip)."""
    path = Path(text)
    if "://" in text or not path.is_file():
        return False
    with open(path, "rb") as handle:
        start = handle.read(64)
    return start.startswith(GZIP_MAGIC) or start.lstrip().startswith(b'{"format"')


__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ArchiveError",
    "ArchiveReader",
    "ArchiveScan",
    "ArchiveWriter",
    "Damage",
    "MessageDigest",
    "SessionBlock",
    "canonical_message",
    "checkpoint_record",
    "is_archive_path",
    "iso",
    "message_record",
    "read_header",
    "run_record",
    "session_record",
    "span_record",
    "state_record",
]
