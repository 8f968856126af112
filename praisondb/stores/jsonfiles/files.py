"""Filesystem primitives for the JSON-files store.

Everything that touches bytes on disk lives here, so the store module reads as
semantics only: safe file names, atomic replacement, append-only JSON Lines logs
(with torn-tail handling), cross-process locks, and the translation of OS errors
into praisondb errors.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import os
import re
import stat
import threading
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import IO, Any, ParamSpec, TypeVar

import filelock
import orjson

from ...errors import BackendUnavailable, ConfigError, PraisonDBError, StorageFull, ValidationError

P = ParamSpec("P")
R = TypeVar("R")

_SLUG_DROP = re.compile(r"[^a-z0-9]+")
SAFE_NAME = re.compile(r"^[a-z0-9_-]{1,128}$")
_SAFE_PART = re.compile(r"^[A-Za-z0-9_.-]{1,160}$")
TEMP_PREFIX = ".tmp-"
_RECENT_LOCKS = 1024
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


# -- names ---------------------------------------------------------------------------


def safe_name(text: str) -> str:
    """A file name for an arbitrary id that can never leave its directory.

    The SHA-256 digest carries the identity (the real id is kept inside the file),
    so ``..``, ``a/b``, ``CON``, 255-character or unicode ids and ids differing only
    by case all get distinct, portable, lowercase ASCII names. The short slug in
    front is only there to make a directory listing readable.
    """
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:40]
    slug = _SLUG_DROP.sub("_", text.lower()).strip("_")[:40]
    return f"{slug}-{digest}" if slug else digest


def new_token() -> str:
    return uuid.uuid4().hex


# -- timestamps ------------------------------------------------------------------------


# -- JSON ------------------------------------------------------------------------------


def dumps(value: Any, what: str = "value") -> bytes:
    """orjson, turning what it refuses (huge ints, odd keys) into a ValidationError."""
    try:
        return orjson.dumps(value)
    except TypeError as exc:
        raise ValidationError(f"{what} cannot be stored as JSON: {exc}") from None


def loads_line(raw: bytes) -> dict[str, Any] | None:
    """One log record, or None when the bytes are not a JSON object (a damaged line)."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def read_json(path: str) -> dict[str, Any] | None:
    with open(path, "rb") as handle:
        return loads_line(handle.read())


def unlink_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


# -- writing ---------------------------------------------------------------------------


def _sync(fd: int) -> None:
    # fdatasync also flushes the file size, which is all an append needs.
    (getattr(os, "fdatasync", None) or os.fsync)(fd)


def fsync_dir(path: str) -> None:
    """Make a rename or a new entry in ``path`` durable (POSIX only; a no-op elsewhere)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def atomic_write(path: str, data: bytes, *, fsync: bool, sync_dir: bool = False) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new file, never a mix.

    Temp file in the same directory, flushed (and fsynced) before ``os.replace``; a
    crash leaves at worst a stray ``.tmp-*`` file, which every reader ignores.
    """
    directory = os.path.dirname(path)
    tmp = os.path.join(directory, f"{TEMP_PREFIX}{new_token()}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(tmp, flags, 0o644)
    try:
        try:
            _write_all(fd, data)
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if fsync and sync_dir:
        fsync_dir(directory)


def append_bytes(path: str, data: bytes, *, fsync: bool) -> int:
    """Append with one ``write`` call (O_APPEND) and return the new file size."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, 0o644)
    try:
        _write_all(fd, data)
        if fsync:
            _sync(fd)
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


def truncate(path: str, size: int, *, fsync: bool) -> None:
    fd = os.open(path, os.O_WRONLY | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    try:
        os.ftruncate(fd, size)
        if fsync:
            _sync(fd)
    finally:
        os.close(fd)


def file_size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def read_range(path: str, start: int, end: int) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(start)
        return handle.read(max(0, end - start))


def complete_lines(data: bytes) -> list[bytes]:
    """The newline-terminated lines of ``data``; a trailing fragment is a torn write."""
    lines = data.split(b"\n")
    lines.pop()  # empty after a final newline, else the torn fragment
    return [line for line in lines if line]


def repair_tail(path: str, *, fsync: bool) -> None:
    """Cut a torn last line (bytes after the final newline) before appending more.

    Called under the log's lock, so the fragment is known to be from a writer that
    died, not one still writing.
    """
    size = file_size(path)
    if size == 0:
        return
    with open(path, "rb") as handle:
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return
        end = last_newline_end(handle, size)
    truncate(path, end, fsync=fsync)


def last_newline_end(handle: IO[bytes], size: int, chunk: int = 1 << 16) -> int:
    """Offset just past the last newline before ``size`` (0 when there is none)."""
    pos = size
    while pos > 0:
        step = min(chunk, pos)
        pos -= step
        handle.seek(pos)
        block = handle.read(step)
        found = block.rfind(b"\n")
        if found >= 0:
            return pos + found + 1
    return 0


def lines_backward(handle: IO[bytes], end: int, chunk: int = 1 << 16) -> Iterator[bytes]:
    """Complete lines before ``end``, last first; a torn fragment at the end is skipped.

    A line longer than ``chunk`` is gathered as a list of blocks and joined once, so
    reading a 100 MB line is linear (prepending each block to it was quadratic).
    """
    pos = end
    carry: list[bytes] = []  # the line not yet complete, its blocks last-read last
    torn_skipped = False
    while pos > 0:
        step = min(chunk, pos)
        pos -= step
        handle.seek(pos)
        block = handle.read(step)
        cut = block.rfind(b"\n")
        if cut < 0:
            carry.append(block)
            continue
        carry.append(block[cut + 1 :])
        newest = b"".join(reversed(carry))
        first, *complete = block[:cut].split(b"\n")
        carry = [first]
        if torn_skipped:
            if newest:
                yield newest
        else:
            torn_skipped = True  # after the final newline: empty or torn
        for line in reversed(complete):
            if line:
                yield line
    if torn_skipped and carry:
        line = b"".join(reversed(carry))
        if line:
            yield line


# -- locks -----------------------------------------------------------------------------


class PathLock:
    """A re-entrant lock held across threads (RLock) and processes (``filelock``).

    Threads of one process queue on the RLock, so only one of them polls the lock
    file; the flock then excludes other processes.
    """

    def __init__(self, path: str, timeout: float) -> None:
        self.path = path
        self._timeout = timeout
        self._thread_lock = threading.RLock()
        self._file_lock = filelock.FileLock(
            path, timeout=timeout, thread_local=False, poll_interval=0.001
        )

    def __enter__(self) -> PathLock:
        if not self._thread_lock.acquire(timeout=self._timeout if self._timeout >= 0 else -1):
            raise filelock.Timeout(self.path)
        try:
            self._file_lock.acquire()
        except BaseException:
            self._thread_lock.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._file_lock.release()
        finally:
            self._thread_lock.release()

    @contextlib.contextmanager
    def attempt(self) -> Iterator[bool]:
        """Take the lock only if it is free right now; yields whether it was taken."""
        if not self._thread_lock.acquire(blocking=False):
            yield False
            return
        try:
            try:
                self._file_lock.acquire(timeout=0)
            except filelock.Timeout:
                taken = False
            else:
                taken = True
            try:
                yield taken
            finally:
                if taken:
                    self._file_lock.release()
        finally:
            self._thread_lock.release()


class LockTable:
    """One :class:`PathLock` per name, shared by the threads of this process.

    Lock files live in their own directory and are never deleted: unlinking a lock
    file while another process waits on it would split the waiters across inodes.
    """

    def __init__(self, directory: str, timeout: float) -> None:
        self._directory = directory
        self._timeout = timeout
        self._guard = threading.Lock()
        self._locks: weakref.WeakValueDictionary[str, PathLock] = weakref.WeakValueDictionary()
        self._recent: OrderedDict[str, PathLock] = OrderedDict()  # spares re-creating them

    def __call__(self, name: str) -> PathLock:
        if not SAFE_NAME.match(name):
            raise ValueError(f"unsafe lock name {name!r}")
        with self._guard:
            lock = self._locks.get(name)
            if lock is None:
                lock = PathLock(os.path.join(self._directory, f"{name}.lock"), self._timeout)
                self._locks[name] = lock
            self._recent[name] = lock
            self._recent.move_to_end(name)
            if len(self._recent) > _RECENT_LOCKS:
                self._recent.popitem(last=False)
            return lock


# -- errors ----------------------------------------------------------------------------


class HasURL:
    """What :func:`guarded` needs from ``self``: a redacted URL to name in errors."""

    url: Any


_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
"""No space, quota exceeded, file-size limit: freeing space (or a limit) is the fix."""


def is_disk_full(exc: OSError) -> bool:
    return exc.errno in _FULL


def storage_full(exc: OSError, url: str) -> StorageFull:
    where = f" writing {exc.filename}" if exc.filename else ""
    return StorageFull(
        f"no space left{where} ({exc.strerror or exc}) in the JSON store {url}: free space on "
        "its disk (or raise the quota / file-size limit), then retry"
    )


def translate_os_error(exc: OSError, url: str) -> PraisonDBError:
    where = f" {exc.filename}" if exc.filename else ""
    if is_disk_full(exc):
        return storage_full(exc, url)
    if isinstance(exc, PermissionError) or exc.errno in {errno.EACCES, errno.EPERM, errno.EROFS}:
        return ConfigError(
            f"cannot access{where}: {exc.strerror or exc}; check the permissions of the "
            f"store directory ({url})"
        )
    return BackendUnavailable(f"filesystem error{where}: {exc.strerror or exc}", url=url)


def guarded(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn lock timeouts and OS errors escaping a store method into praisondb errors."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except PraisonDBError:
            raise
        except filelock.Timeout as exc:
            url = getattr(args[0], "url", "")
            raise BackendUnavailable(
                f"timed out waiting for the lock {exc.lock_file}; another process holds it",
                url=str(url),
            ) from exc
        except OSError as exc:
            url = getattr(args[0], "url", "")
            raise translate_os_error(exc, str(url)) from exc

    return wrapper


class Root:
    """The store directory. Every directory the store writes in is built here.

    Each component below the (resolved) root must be a safe name and must not be a
    symlink, so no id and no planted link can make a write land outside the root.
    Files are then opened with ``O_NOFOLLOW`` or replaced with ``os.replace``,
    neither of which follows a link in the last component.
    """

    def __init__(self, path: str) -> None:
        self.path = path

    def dir(self, *parts: str) -> str:
        current = self.path
        exists = True
        for part in parts:
            if part in {".", ".."} or not _SAFE_PART.match(part):
                raise ConfigError(f"refusing to touch {part!r}: not a safe name inside {self.path}")
            current = current + os.sep + part
            if exists:
                try:
                    mode = os.lstat(current).st_mode
                except (FileNotFoundError, NotADirectoryError):
                    exists = False  # nothing deeper exists yet, so nothing deeper is a link
                    continue
                if stat.S_ISLNK(mode):
                    raise ConfigError(f"refusing to write through the symlink {current}")
        return current

    def file(self, *parts: str) -> str:
        """A file in a checked directory; the file name itself must be safe too."""
        *dirs, name = parts
        if name in {".", ".."} or not _SAFE_PART.match(name):
            raise ConfigError(f"refusing to touch {name!r}: not a safe name inside {self.path}")
        return self.dir(*dirs) + os.sep + name
