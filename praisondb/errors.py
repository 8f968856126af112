"""The praisondb error hierarchy.

::

    PraisonDBError
    ├── ConfigError            bad URL, option or credentials; fix the configuration
    ├── BackendUnavailable     cannot reach a store (transient; retried before it is raised)
    ├── NotFound               the session, checkpoint, run or key does not exist
    ├── Conflict               compare-and-set or version clash; re-read and retry
    ├── ValidationError        the input can never be stored as given
    ├── SchemaOutOfDate        the database schema is behind; run ``praisondb db upgrade``
    └── StorageFull            the disk (or the server's) is full; free space, then retry

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


class ValidationError(PraisonDBError, ValueError):
    """The input is malformed in a way no retry can fix."""


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


class StorageFull(PraisonDBError, OSError):
    """No space left for the write (a full disk, quota or file-size limit, locally or on
    the database server). Not transient: an immediate retry fails the same way; free
    space (or raise the limit) first. Nothing of the failed write is kept."""


__all__ = [
    "BackendUnavailable",
    "ConfigError",
    "Conflict",
    "NotFound",
    "PraisonDBError",
    "SchemaOutOfDate",
    "StorageFull",
    "ValidationError",
]
