"""The local spool: where analytics batches wait while ClickHouse cannot take them.

A spool is a directory of JSONL files, one batch per line, in ClickHouse's
``JSONCompactColumns`` format: one JSON array per column of
:data:`praisondb.analytics.schema.EVENT_COLUMNS` (live inserts go as Arrow; replay
decodes a line and inserts it the same way, see :mod:`praisondb.analytics.codec`)::

    [["<id>", ...], ["2026-01-02T03:04:05.000006+00:00", ...], ["message", ...], ...]

Nothing in a spool file names the ClickHouse it was meant for, so a spool written
while one URL was down can be replayed into another (``spool_dir=`` on both sinks).

Files move through three names so several processes can share a directory safely:

``<name>.jsonl.part``
    being written by the process whose pid is in the name;
``<name>.jsonl``
    complete, waiting for any process to replay it;
``<name>.jsonl.replaying-<pid>``
    claimed (by an atomic rename) by the replaying process.

A ``.part`` or ``.replaying`` file whose process has died is picked up again, and so
is a dead process's journal (``journal-<pid>-<id>.jsonl``, see
:mod:`praisondb.analytics.journal`): one event per line instead of one batch. Replay
deletes a file only after every batch in it is stored; a crash in between replays it
again, and the replayer skips events whose ids are already stored, so nothing is
written twice. A batch ClickHouse rejects for its content (not for being unreachable)
goes to ``rejected-*.jsonl`` beside the spool, never to the void.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from ..ids import new_id
from .journal import PREFIX as JOURNAL_PREFIX
from .journal import abandoned, pid_alive, pid_of, read_rows
from .schema import EVENT_COLUMNS

log = logging.getLogger("praisondb.analytics")

ROTATE_BYTES = 64 * 1024 * 1024
JOURNAL_BATCH = 50_000
Columns = list[list[Any]]


@dataclass(frozen=True)
class Claimed:
    """A spool file this process owns until it calls :meth:`Spool.done`."""

    path: Path


class Spool:
    """Append batches while the target is down; hand back whole files to replay."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._file: IO[bytes] | None = None
        self._path: Path | None = None
        self._size = 0

    def __repr__(self) -> str:
        return f"Spool({str(self.directory)!r})"

    @property
    def writing(self) -> bool:
        """Whether this process has a spool file open (the target was down)."""
        return self._file is not None

    # -- writing ---------------------------------------------------------------------
    def write(self, body: bytes) -> None:
        """Append one encoded batch durably (flushed and fsynced before returning)."""
        if not body:
            return
        line = body + b"\n"
        with self._lock:
            if self._file is None:
                self.directory.mkdir(parents=True, exist_ok=True)
                self._path = self.directory / f"events-{os.getpid()}-{new_id()}.jsonl.part"
                self._file = open(self._path, "ab")  # noqa: SIM115 - kept open across batches
                self._size = 0
            self._file.write(line)
            self._file.flush()
            os.fsync(self._file.fileno())
            self._size += len(line)
            if self._size >= ROTATE_BYTES:
                self._seal_locked()

    def seal(self) -> None:
        """Finish the file being written so it can be replayed (by anyone)."""
        with self._lock:
            self._seal_locked()

    def _seal_locked(self) -> None:
        if self._file is None or self._path is None:
            return
        self._file.close()
        self._path.rename(self._path.with_suffix(""))  # drop ".part"
        self._file = None
        self._path = None

    # -- replaying -------------------------------------------------------------------
    def pending(self) -> bool:
        """Whether there is anything to replay (cheap: one directory listing)."""
        try:
            return any(self._candidates())
        except OSError:
            return False

    def _candidates(self) -> Iterator[Path]:
        if not self.directory.is_dir():
            return
        for path in sorted(self.directory.iterdir()):
            name = path.name
            if name.startswith(JOURNAL_PREFIX):
                if name.endswith(".jsonl"):
                    if abandoned(path):
                        yield path
                    continue
            elif name.startswith("." + JOURNAL_PREFIX):  # a segment its writer died creating
                if name.endswith(".new") and abandoned(path):
                    path.unlink(missing_ok=True)
                continue
            elif not name.startswith("events-"):
                continue
            if name.endswith(".jsonl"):
                yield path
            elif name.endswith(".jsonl.part"):
                pid = pid_of(path, "events-")
                if pid is not None and pid != os.getpid() and not pid_alive(pid):
                    yield path
            elif ".jsonl.replaying-" in name:
                pid = pid_of(path, ".replaying-")
                if pid is not None and pid != os.getpid() and not pid_alive(pid):
                    yield path

    def claim(self) -> Iterator[Claimed]:
        """Each replayable file, renamed so no other process replays it at the same time."""
        for path in list(self._candidates()):
            base = path.name.split(".jsonl", 1)[0]
            target = path.with_name(f"{base}.jsonl.replaying-{os.getpid()}-{new_id()[-8:]}")
            try:
                path.rename(target)
            except FileNotFoundError:  # another process claimed it first
                continue
            yield Claimed(target)

    @staticmethod
    def batches(claimed: Claimed) -> Iterator[Columns]:
        """The batches of a claimed file; a torn last line (crash mid-write) is skipped."""
        if claimed.path.name.startswith(JOURNAL_PREFIX):
            yield from _journal_batches(claimed.path)
            return
        with open(claimed.path, "rb") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    columns = orjson.loads(line)
                except orjson.JSONDecodeError:
                    log.warning("skipping a torn line %d in %s", number, claimed.path.name)
                    continue
                if (
                    isinstance(columns, list)
                    and columns
                    and all(isinstance(c, list) and len(c) == len(columns[0]) for c in columns)
                ):
                    yield columns
                else:
                    log.warning("skipping a malformed line %d in %s", number, claimed.path.name)

    @staticmethod
    def done(claimed: Claimed) -> None:
        claimed.path.unlink(missing_ok=True)

    def release(self, claimed: Claimed) -> None:
        """Give a claimed file back (replay failed half-way); it is retried later."""
        base = claimed.path.name.split(".jsonl", 1)[0]
        with contextlib.suppress(FileNotFoundError):
            claimed.path.rename(claimed.path.with_name(f"{base}.jsonl"))

    def reject(self, body: bytes, reason: str) -> Path:
        """Keep a batch ClickHouse refused for its content, with the reason, for a human.

        ``rejected-*.jsonl`` holds the batch; ``rejected-*.error.txt`` says why. After
        fixing the cause, renaming the batch to ``events-<anything>.jsonl`` replays it.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"rejected-{os.getpid()}-{new_id()}.jsonl"
        path.write_bytes(body + b"\n")
        path.with_suffix(".error.txt").write_text(reason + "\n", encoding="utf-8")
        return path

    def close(self) -> None:
        self.seal()


def _journal_batches(path: Path) -> Iterator[Columns]:
    """A dead process's journal as batches of columns, like a spool file's."""
    rows, torn = read_rows(path.read_bytes())
    width = len(EVENT_COLUMNS)
    good = [row for row in rows if len(row) == width]
    torn += len(rows) - len(good)
    if torn:
        log.warning("skipping %d torn or malformed line(s) in %s", torn, path.name)
    for start in range(0, len(good), JOURNAL_BATCH):
        chunk = good[start : start + JOURNAL_BATCH]
        yield [list(column) for column in zip(*chunk, strict=True)]
