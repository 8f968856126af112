"""The journal: each recorded event is on disk before ``record`` returns, so SIGKILL loses none.

The sink keeps events in memory until its flusher delivers them in batches; a process
killed in between (SIGKILL, the OOM killer, a crash in native code) used to lose them.
Now ``record`` first copies the event, as one JSON line, into a per-process journal.
The journal is a memory-mapped file, so the copy is a ``memcpy`` into the OS page
cache (no system call, the interpreter lock kept): the kernel owns those pages, and
they reach the file even when the process dies the next instant. That protects
against the death of the process, not of the machine: the journal is never fsynced
(a power loss may take the last seconds, as before).

The journal is a series of segment files in the spool directory::

    journal-<pid>-<id>.jsonl    one event per line: [id, ts, type, ...] in EVENT_COLUMNS order

(then zero bytes up to the preallocated size). The flusher closes the current segment
at the start of each cycle, and deletes a closed segment once every event in it is
delivered to ClickHouse, spooled (fsynced) or set aside as rejected; see
:class:`Watermark`. A clean ``close()`` leaves no journal behind.

The writer holds an exclusive ``flock`` on each segment while it lives; the kernel
drops it when the process dies, which is how another process (or the next start) knows
the segment is abandoned (where ``flock`` is missing, the pid in the name decides, as
for the spool's ``.part`` files). An abandoned segment is replayed like a spool file:
events whose ids are already stored are skipped, so a journal that overlaps what was
delivered before the crash yields 0 lost and 0 doubled.

Segments are preallocated (``posix_fallocate`` where the file system has it), so a
full disk is an error when a segment is created, never a ``SIGBUS`` on a write into the
map. When no segment can be created the sink logs an error and goes on without the
journal (events are then at risk until delivered, as before).
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import threading
from pathlib import Path
from typing import Any

import orjson

from ..ids import new_id
from ..model import Event
from .codec import clean_columns

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: the pid in the name decides
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("praisondb.analytics")

PREFIX = "journal-"
SEGMENT_BYTES = 16 * 1024 * 1024
_OPTIONS = orjson.OPT_NAIVE_UTC | orjson.OPT_APPEND_NEWLINE
_PAGE = mmap.PAGESIZE
_ZEROS = memoryview(bytes(1024 * 1024))

_writing: set[str] = set()
"""Names of the segments this process writes: never replayed while it lives."""


def encode_row(event: Event) -> bytes:
    """One journal line: the event's values in EVENT_COLUMNS order, newline-terminated.

    A tuple, not the dataclass: orjson writes it in a third of the time.
    """
    e = event
    row = (
        e.id,
        e.ts,
        e.type,
        e.session_id,
        e.user_id,
        e.agent,
        e.model,
        e.role,
        e.input_tokens,
        e.output_tokens,
        e.latency_ms,
        e.tool,
        e.status,
        e.attributes,
    )
    try:
        return orjson.dumps(row, option=_OPTIONS)
    except TypeError:  # a value JSON cannot hold: store it the way the cleaned insert would
        cleaned = [column[0] for column in clean_columns([[value] for value in row])]
        return orjson.dumps(cleaned, option=_OPTIONS)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (this one always does)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def pid_of(path: Path, marker: str) -> int | None:
    """The writer's pid in a spool or journal file name, after ``marker``."""
    try:
        return int(path.name.rsplit(marker, 1)[1].split(".")[0].split("-")[0])
    except (IndexError, ValueError):
        return None


def abandoned(path: Path) -> bool:
    """Whether no live process writes this segment (its writer died, or closed it)."""
    if path.name in _writing:
        return False
    if fcntl is None:  # pragma: no cover - Windows
        pid = pid_of(path, PREFIX)
        return pid is not None and pid != os.getpid() and not pid_alive(pid)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    finally:
        os.close(fd)  # also drops the lock just taken
    return True


def _reserve(fd: int, size: int, *, prefault: bool) -> None:
    """Size the file and claim its disk blocks now (a full disk fails here, not in the map).

    ``prefault`` also writes the zeros, so the pages are in the page cache before the
    first event lands there: ``record`` then pays no page fault (~0.25 us per event).
    The writes release the interpreter lock; the flusher does them for the next segment.
    """
    os.ftruncate(fd, size)
    allocate = getattr(os, "posix_fallocate", None)
    if allocate is not None:
        with contextlib.suppress(OSError):  # not every file system has it; prefault below
            allocate(fd, 0, size)
            if not prefault:
                return
    for offset in range(0, size, len(_ZEROS)):
        os.pwrite(fd, _ZEROS[: size - offset], offset)


class _Segment:
    """One journal file, mapped, locked, and how far it is written."""

    __slots__ = ("end", "fd", "map", "path", "pos", "size")

    def __init__(self, path: Path, fd: int, mapped: mmap.mmap, size: int) -> None:
        self.path = path
        self.fd = fd
        self.map = mapped
        self.size = size
        self.pos = 0
        self.end = 0  # the sink's event count when the segment was closed

    @classmethod
    def create(cls, directory: Path, size: int, *, prefault: bool) -> _Segment:
        """A new segment, locked before it takes its final name (so never seen unlocked)."""
        directory.mkdir(parents=True, exist_ok=True)
        name = f"{PREFIX}{os.getpid()}-{new_id()}.jsonl"
        temp = directory / f".{name}.new"
        fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _reserve(fd, size, prefault=prefault)
            mapped = mmap.mmap(fd, size)
            _writing.add(name)
            os.rename(temp, directory / name)
        except BaseException:
            _writing.discard(name)
            os.close(fd)
            temp.unlink(missing_ok=True)
            raise
        return cls(directory / name, fd, mapped, size)

    def discard(self, *, delete: bool) -> None:
        """Unmap and close (which drops the lock); delete the file unless it must be replayed."""
        with contextlib.suppress(BufferError, ValueError):
            self.map.close()
        with contextlib.suppress(OSError):
            os.close(self.fd)
        if delete:
            self.path.unlink(missing_ok=True)
        _writing.discard(self.path.name)


class Watermark:
    """How many events, counted from the first one recorded, are settled (stored or on disk).

    Batches settle out of order (the flusher's, and a caller's when the buffer is full),
    so each reports its range of event numbers and the mark moves over what is contiguous.
    """

    def __init__(self) -> None:
        self.mark = 0
        self._ranges: dict[int, int] = {}
        self._lock = threading.Lock()

    def settled(self, start: int, count: int) -> int:
        if count <= 0:
            return self.mark
        with self._lock:
            self._ranges[start] = start + count
            while self.mark in self._ranges:
                self.mark = self._ranges.pop(self.mark)
            return self.mark


class Journal:
    """The segments of one sink; ``write`` runs under :attr:`lock`, with the buffer append."""

    def __init__(self, directory: Path, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.directory = directory
        self.lock = threading.Lock()
        self.total = 0
        """Events recorded (each one's number in the buffer's order)."""
        self.broken: str | None = None
        self._segment_bytes = segment_bytes
        self._current: _Segment | None = None
        self._map: mmap.mmap | None = None  # the current segment's, copied here for speed
        self._pos = 0
        self._limit = -1  # no current segment: the next write opens one
        self._spare: _Segment | None = None
        self._closed: list[_Segment] = []
        self._shut = False

    def __repr__(self) -> str:
        return f"Journal({str(self.directory)!r})"

    # -- the caller's side (under ``lock``) ------------------------------------------
    def write(self, line: bytes) -> None:
        """Copy one line into the map; counts the event even when the journal is broken."""
        self.total += 1
        pos = self._pos
        end = pos + len(line)
        if end > self._limit:
            if not self._next_locked(len(line)):
                return
            pos, end = 0, len(line)
        self._map[pos:end] = line  # type: ignore[index]
        self._pos = end

    def _use_locked(self, segment: _Segment | None) -> None:
        self._current = segment
        self._map = None if segment is None else segment.map
        self._pos = 0 if segment is None else segment.pos
        self._limit = -1 if segment is None else segment.size

    def _next_locked(self, needed: int) -> bool:
        if self._shut or self.broken is not None:
            return False
        self._close_current_locked(self.total - 1)
        spare, self._spare = self._spare, None
        if spare is not None and spare.size >= needed:
            self._use_locked(spare)
            return True
        if spare is not None:
            spare.discard(delete=True)
        size = max(self._segment_bytes, -(-needed // _PAGE) * _PAGE)
        try:
            self._use_locked(_Segment.create(self.directory, size, prefault=False))
        except OSError as exc:
            self.broken = f"{type(exc).__name__}: {exc}"
            log.error(
                "cannot write the analytics journal in %s (%s): events recorded from now on "
                "are lost if the process is killed before they are delivered; free disk "
                "space or pass spool_dir= a writable directory, then restart",
                self.directory,
                self.broken,
            )
            return False
        return True

    def _close_current_locked(self, end: int) -> None:
        current = self._current
        if current is None:
            return
        current.pos = self._pos
        self._use_locked(None)
        if current.pos:
            current.end = end
            self._closed.append(current)
        else:
            current.discard(delete=True)

    # -- the flusher's side ------------------------------------------------------------
    def rotate(self) -> None:
        """Close the current segment (if it holds events): it is deleted once they settle."""
        with self.lock:
            if self._current is not None and self._pos:
                self._close_current_locked(self.total)
                self._use_locked(self._spare)
                self._spare = None

    def prepare(self) -> None:
        """Have the next segment ready and prefaulted, so ``record`` seldom creates files.

        Only once events flow: a sink that only reads (the CLI's reports) leaves no file.
        """
        if not self.total or self._spare is not None or self._shut or self.broken is not None:
            return
        try:
            spare = _Segment.create(self.directory, self._segment_bytes, prefault=True)
        except OSError as exc:
            log.warning("cannot prepare an analytics journal segment: %s", exc)
            return
        with self.lock:
            taken = self._spare is None and not self._shut
            if taken:
                self._spare = spare
        if not taken:
            spare.discard(delete=True)

    def release(self, mark: int) -> None:
        """Delete the closed segments whose every event is settled (numbered below ``mark``)."""
        if not self._closed:
            return
        with self.lock:
            done = [s for s in self._closed if s.end <= mark]
            if not done:
                return
            self._closed = [s for s in self._closed if s.end > mark]
        for segment in done:
            segment.discard(delete=True)

    def pending(self) -> int:
        """Segment files still needed (closed, not yet settled)."""
        return len(self._closed)

    def close(self, mark: int) -> None:
        """Stop journaling: delete what is settled, keep the rest on disk for the next start."""
        with self.lock:
            self._shut = True
            self._close_current_locked(self.total)
            spare, self._spare = self._spare, None
            closed, self._closed = self._closed, []
        if spare is not None:
            spare.discard(delete=True)
        kept = 0
        for segment in closed:
            settled = segment.end <= mark
            segment.discard(delete=settled)
            kept += not settled
        if kept:
            log.warning(
                "%d analytics journal segment(s) in %s hold events not yet delivered; "
                "the next process that opens this analytics target replays them",
                kept,
                self.directory,
            )

    def detach(self) -> None:
        """In a forked child: let go of the parent's segments (shared maps) without deleting them.

        The child's events are then not journaled; the parent's journal stays intact, and
        its lock falls with the parent (the child no longer holds the inherited files).
        """
        self.lock = threading.Lock()  # the parent's may have been copied while held
        self._shut = True
        segments = [*self._closed, self._spare, self._current]
        self._closed, self._spare = [], None
        self._use_locked(None)
        for segment in segments:
            if segment is not None:
                segment.discard(delete=False)


def read_rows(data: bytes) -> tuple[list[list[Any]], int]:
    """The rows of a journal segment (up to its zero padding); and how many lines were torn."""
    stop = data.find(b"\x00")
    if stop >= 0:
        data = data[:stop]
    rows: list[list[Any]] = []
    torn = 0
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError:
            torn += 1
            continue
        if isinstance(row, list) and row and not isinstance(row[0], list):
            rows.append(row)
        else:
            torn += 1
    return rows, torn
