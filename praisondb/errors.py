"""The praisondb error hierarchy.

::

    PraisonDBError
    ├── ConfigError            bad URL, option or credentials; fix the configuration
    ├── BackendUnavailable     cannot reach a store (transient; retried before it is raised)
    ├── NotFound               the session, checkpoint, run or key does not exist
    ├── Conflict               compare-and-set or version clash; re-read and retry
    │   ├── LockTimeout        another holder kept a session lock longer than we waited
    │   ├── LeaseLost          a lease ran out and another holder took it
    │   └── ConflictAbort      ``copy --on-conflict fail`` met a session it cannot extend
    ├── ValidationError        the input can never be stored as given
    │   ├── InvalidToken       a session token is malformed, forged or tampered with
    │   │   └── TokenExpired   a genuine token whose lifetime is over
    │   └── ArchiveError       not an archive this praisondb can read, or a damaged one
    ├── SchemaOutOfDate        the database schema is behind; run ``praisondb db upgrade``
    ├── BatchTypeError         an analytics value does not fit its column (internal: the
    │                          ClickHouse sink coerces the batch and retries; never raised out)
    ├── StorageFull            the disk (or the server's) is full; free space, then retry
    ├── DatabaseClosed         the (async) database was closed before or during the call
    └── ToolCallLimitExceeded  a managed agent asked for more custom tool calls than allowed

Every error that names a URL names it redacted. ``transient`` tells retry code
whether trying again can help.
"""

from __future__ import annotations


class PraisonDBError(Exception):
    """Root of every error praisondb raises on purpose."""

    transient: bool = False


class ConfigError(PraisonDBError, ValueError):
    """A URL, option or credential is wrong; nothing will work until it is fixed."""


class BackendUnavailable(PraisonDBError, ConnectionError):
    """A store could not be reached after every retry."""

    transient = True

    def __init__(
        self,
        message: str,
        *,
        url: str | None = None,
        attempts: int = 1,
        waited: float | None = None,
    ) -> None:
        self.url = url
        self.attempts = attempts
        self.waited = waited
        """Seconds spent on every attempt and the pauses between them, if measured."""
        where = f" ({url})" if url else ""
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        if waited is not None:
            tries = f"{tries} over {waited:.1f} s" if tries else f" after {waited:.1f} s"
        super().__init__(f"{message}{where}{tries}")


class NotFound(PraisonDBError, KeyError):
    """The thing asked for does not exist."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else "not found"


class Conflict(PraisonDBError):
    """A write lost a race: a version changed or an id already exists."""


class LockTimeout(Conflict, TimeoutError):
    """Someone else held the lock for longer than we were willing to wait."""

    retry_after: int | None = None
    """Seconds after which trying again may succeed, when known (a served chat refused
    its session's turn: the server's ``Retry-After``)."""


class LeaseLost(Conflict):
    """The lease ran out and another holder took it: the critical section was not exclusive."""


class ConflictAbort(Conflict):
    """Raised by a copy with ``on_conflict="fail"``; names the session and why."""


class ValidationError(PraisonDBError, ValueError):
    """The input is malformed in a way no retry can fix."""


class InvalidToken(ValidationError):
    """The token is malformed, was signed with another secret, or was tampered with."""


class TokenExpired(InvalidToken):
    """The token was genuine but its lifetime is over."""


class ArchiveError(ValidationError):
    """The file is not an archive this praisondb can read, or it is damaged."""


class SchemaOutOfDate(PraisonDBError):
    """The database schema is older than this version of praisondb expects."""

    def __init__(self, current: str | None, expected: str, *, url: str | None = None) -> None:
        self.current = current
        self.expected = expected
        where = f" {url}" if url else ""
        super().__init__(
            f"database{where} is at schema revision {current or 'none'}, "
            f"this praisondb needs {expected}: run `praisondb db upgrade"
            f"{' --url ' + url if url else ''}` (or pass auto_migrate=True)"
        )


class BatchTypeError(PraisonDBError, ValueError):
    """A value does not fit its analytics column; the batch must go through ``clean_columns``.

    Raised by :mod:`praisondb.analytics.codec` and caught by the ClickHouse sink, which
    coerces every value and sends the batch again: a caller never sees it.
    """


class ToolCallLimitExceeded(PraisonDBError):
    """The agent asked for more custom tool calls in one turn than ``max_tool_calls``."""


class DatabaseClosed(PraisonDBError):
    """The database object was closed, before or while this call ran. Open a new one
    (or keep it open until every task using it has finished)."""


class StorageFull(PraisonDBError, OSError):
    """No space left for the write (a full disk, quota or file-size limit, locally or on
    the database server). Not transient: an immediate retry fails the same way; free
    space (or raise the limit) first. Nothing of the failed write is kept."""


__all__ = [
    "ArchiveError",
    "BackendUnavailable",
    "BatchTypeError",
    "ConfigError",
    "Conflict",
    "ConflictAbort",
    "DatabaseClosed",
    "InvalidToken",
    "LeaseLost",
    "LockTimeout",
    "NotFound",
    "PraisonDBError",
    "SchemaOutOfDate",
    "StorageFull",
    "TokenExpired",
    "ToolCallLimitExceeded",
    "ValidationError",
]
