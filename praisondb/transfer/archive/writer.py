"""Writing a praisondb archive: a header, one block per session, state, an end record.

See :mod:`praisondb.transfer.archive` for the format and ``docs/archive-format.md``.
"""

from __future__ import annotations

import gzip
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, cast

import orjson

from ...model import Checkpoint, MemoryItem, Message, Run, SessionInfo, Span, StateEntry
from .records import (
    FORMAT_NAME,
    FORMAT_VERSION,
    MessageDigest,
    checkpoint_record,
    iso,
    memory_record,
    message_record,
    run_record,
    session_record,
    span_record,
    state_record,
)


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
        self.memories = 0
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

    def write_memories(self, items: list[MemoryItem]) -> None:
        for item in items:
            self._write(memory_record(item))
        self.memories += len(items)

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
                "memories": self.memories,
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
