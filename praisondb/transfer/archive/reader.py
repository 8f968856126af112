"""Reading a praisondb archive: the header first, then a scan, then the import.

Nothing is imported before the scan has walked the whole file
(:class:`~.grammar.RecordWalk`), so a damaged line is reported with its number before
any of its session reaches a store; the import walks the same grammar again and groups
its records into :class:`SessionBlock` objects and batches of state entries.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import ValidationError
from ...model import Checkpoint, MemoryItem, Message, Run, SessionInfo, Span, StateEntry
from .grammar import CHILD_KINDS, Record, RecordWalk, lines, parse_line
from .records import FORMAT_NAME, FORMAT_VERSION, GZIP_MAGIC, ArchiveError

MAX_REPORTED_DAMAGE = 50
STATE_BATCH = 1000


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
    memories: int = 0
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


def read_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The header, checked: the right format and a version this praisondb can read."""
    path = Path(path)
    if not path.is_file():
        raise ArchiveError(f"{path}: no such archive file")
    for number, line, error in lines(path):
        if line is None:
            raise ArchiveError(f"{path}: line {number}: {error}")
        try:
            header = parse_line(line)
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


class MemoryBatch(list[MemoryItem]):
    """Long-term memories read from an archive (told apart from a batch of state)."""


class _Lookahead:
    """An iterator of records that can take one back (the record that ended a group)."""

    def __init__(self, records: Iterator[Record]) -> None:
        self._records = records
        self._back: list[Record] = []

    def __iter__(self) -> _Lookahead:
        return self

    def __next__(self) -> Record:
        return self._back.pop() if self._back else next(self._records)

    def push(self, record: Record) -> None:
        self._back.append(record)


class ArchiveReader:
    """Reads an archive in two passes: :meth:`scan` checks every line, :meth:`blocks` yields.

    Nothing is imported before the scan has seen the whole file, so a damaged line is
    reported with its number before any of its session reaches a store.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.header = read_header(self.path)

    def scan(self) -> ArchiveScan:
        """Walk every record, digests included; the totals and every damaged line."""
        result = ArchiveScan(self.header)
        walk = RecordWalk(self.path, result.note)
        for _record in walk:
            pass
        result.sessions, result.messages = walk.sessions, walk.messages
        result.state_entries, result.bytes = walk.state_entries, walk.bytes
        result.memories = walk.memories
        result.complete = walk.ended
        return result

    def blocks(
        self, scan: ArchiveScan | None = None
    ) -> Iterator[SessionBlock | MemoryBatch | list[StateEntry]]:
        """Session blocks, batches of memories and batches of state entries, in file order.

        Pass the :class:`ArchiveScan` of a damaged archive to skip what it found
        damaged; without one, any damage raises :class:`ArchiveError`. A block's
        messages must be consumed (or abandoned) before asking for the next item.
        """
        skip_sessions = scan.damaged_sessions if scan else set()
        skip_lines = scan.damaged_lines if scan else set()
        tolerant = scan is not None and not scan.ok
        records = _Lookahead(
            iter(RecordWalk(self.path, self._skip if tolerant else self._refuse, digests=False))
        )
        state_batch: list[StateEntry] = []
        memory_batch = MemoryBatch()
        for record in records:
            if record.kind == "memory":
                if record.line not in skip_lines:
                    memory_batch.append(record.value)
                if len(memory_batch) >= STATE_BATCH:
                    yield memory_batch
                    memory_batch = MemoryBatch()
            elif record.kind == "state":
                if record.line not in skip_lines:
                    state_batch.append(record.value)
                if len(state_batch) >= STATE_BATCH:
                    yield state_batch
                    state_batch = []
            elif record.kind == "session" and record.session not in skip_sessions:
                yield from _session_block(record, records)
            # else: the end record, or the records of a skipped block
        if state_batch:
            yield state_batch
        if memory_batch:
            yield memory_batch

    @staticmethod
    def _skip(_line: int, _reason: str, _session: str | None) -> None:
        """A damaged archive imported with its scan: the scan's sets say what to skip."""

    def _refuse(self, line: int, reason: str, _session: str | None) -> None:
        raise ArchiveError(f"{self.path}: line {line}: {reason}")


def _session_block(head: Record, records: _Lookahead) -> Iterator[SessionBlock]:
    """One session's block from its ``session`` record on; its messages stream lazily."""
    children: dict[str, list[Any]] = {kind: [] for kind in CHILD_KINDS}
    for record in records:
        if record.kind not in children:
            records.push(record)
            break
        children[record.kind].append(record.value)

    def messages() -> Iterator[Message]:
        for record in records:
            if record.kind != "message":
                if record.kind != "session_end":
                    records.push(record)
                return
            yield record.value

    stream = messages()
    yield SessionBlock(
        head.value, children["run"], children["checkpoint"], children["span"], head.line, stream
    )
    for _ in stream:
        pass  # drain what the consumer did not read


def is_archive_path(text: str) -> bool:
    """True for an existing file that starts like an archive (plain or gzip)."""
    path = Path(text)
    if "://" in text or not path.is_file():
        return False
    with open(path, "rb") as handle:
        start = handle.read(64)
    return start.startswith(GZIP_MAGIC) or start.lstrip().startswith(b'{"format"')


__all__ = [
    "ArchiveReader",
    "ArchiveScan",
    "Damage",
    "MemoryBatch",
    "SessionBlock",
    "check_header",
    "is_archive_path",
    "read_header",
]
