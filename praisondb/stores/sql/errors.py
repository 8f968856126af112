"""Driver errors of the three dialects, classified and worded as praisondb errors.

Which are worth retrying (connection loss, deadlocks, lock timeouts), which are
configuration (wrong password, unknown database), a full disk, an oversize packet.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

from ...errors import ConfigError, Conflict, StorageFull, ValidationError
from ...retry import driver_text
from ...urls import StoreURL
from .engine import driver_url
from .packets import packet_too_large

_PG_TRANSIENT_STATES = ("08", "40001", "40P01", "55P03", "57P01", "57P02", "57P03", "53300")
_MYSQL_TRANSIENT_CODES = frozenset({1040, 1205, 1213, 2002, 2003, 2006, 2013, 2055})
_SQLITE_TRANSIENT = ("database is locked", "database table is locked", "busy")


_PG_CONFIG_TEXT = (
    "does not exist",
    "password authentication failed",
    "no pg_hba.conf entry",
    "authentication failed",
)
_MYSQL_CONFIG_CODES = frozenset({1044, 1045, 1049, 1698})


def _driver(orig: object) -> str:
    module = type(orig).__module__
    return (
        "psycopg"
        if module.startswith("psycopg")
        else "pymysql"
        if module.startswith("pymysql")
        else "sqlite"
    )


def is_transient(exc: BaseException) -> bool:
    """Connection loss, pool exhaustion, deadlocks and lock timeouts: worth another try."""
    if isinstance(exc, sa.exc.TimeoutError):
        return True
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    driver = _driver(orig)
    if driver == "psycopg":
        state = getattr(orig, "sqlstate", None)
        if isinstance(state, str):
            return state.startswith(_PG_TRANSIENT_STATES)
        # psycopg reports a failed connection attempt without a sqlstate
        return isinstance(exc, sa.exc.OperationalError) and not is_config_error(exc)
    if driver == "pymysql":
        args: tuple[Any, ...] = tuple(getattr(orig, "args", ()))
        return bool(args) and args[0] in _MYSQL_TRANSIENT_CODES
    text = str(orig).lower()
    return isinstance(exc, sa.exc.OperationalError) and any(m in text for m in _SQLITE_TRANSIENT)


def is_config_error(exc: BaseException) -> bool:
    """Wrong password, unknown database or user: retrying cannot help."""
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    orig = exc.orig
    driver = _driver(orig)
    if driver == "psycopg":
        state = getattr(orig, "sqlstate", None)
        if isinstance(state, str):
            return state.startswith(("28", "3D"))
        text = str(orig)
        return "FATAL" in text and any(marker in text for marker in _PG_CONFIG_TEXT)
    if driver == "pymysql":
        codes: tuple[Any, ...] = tuple(getattr(orig, "args", ()))
        return bool(codes) and codes[0] in _MYSQL_CONFIG_CODES
    return False


def describe(exc: BaseException, url: StoreURL) -> str:
    """A one-line, password-free description of a driver error."""
    orig = getattr(exc, "orig", None) or exc
    secrets = (url.secret, str(driver_url(url).render_as_string(hide_password=False)))
    return f"{type(orig).__name__}: {driver_text(orig, *secrets)}"


_PG_DISK_FULL = "53100"
_MYSQL_DISK_FULL_CODES = frozenset({1021, 1114})  # ER_DISK_FULL, ER_RECORD_FILE_FULL
_MYSQL_ENGINE_ERRNO = frozenset({1030, 1296})  # "Got error N from storage engine"
_MYSQL_FULL_ERRNOS = re.compile(r"\berror:? (28|135)\b|No space left", re.I)
_SQLITE_FULL = 13  # SQLITE_FULL: "database or disk is full"
_MYSQL_PACKET_TOO_LARGE = 1153


def is_disk_full(exc: BaseException) -> bool:
    """The database (or the disk under it) is full: no retry helps until space is freed."""
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    orig = exc.orig
    driver = _driver(orig)
    if driver == "psycopg":
        return getattr(orig, "sqlstate", None) == _PG_DISK_FULL
    if driver == "pymysql":
        args: tuple[Any, ...] = tuple(getattr(orig, "args", ()))
        if not args:
            return False
        text = " ".join(str(a) for a in args[1:])
        return args[0] in _MYSQL_DISK_FULL_CODES or (
            args[0] in _MYSQL_ENGINE_ERRNO and bool(_MYSQL_FULL_ERRNOS.search(text))
        )
    code = getattr(orig, "sqlite_errorcode", None)
    return code == _SQLITE_FULL or "database or disk is full" in str(orig)


def is_packet_too_large(exc: BaseException) -> bool:
    """MySQL/MariaDB refused a statement over ``max_allowed_packet`` (error 1153)."""
    if not isinstance(exc, sa.exc.DBAPIError) or _driver(exc.orig) != "pymysql":
        return False
    args: tuple[Any, ...] = tuple(getattr(exc.orig, "args", ()))
    return bool(args) and args[0] == _MYSQL_PACKET_TOO_LARGE


class Unreachable(Exception):
    """A transient driver failure, re-raised with a redacted message so Retry can report it."""


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, Unreachable)


def translate(exc: sa.exc.SQLAlchemyError, url: StoreURL) -> Exception | None:
    """The praisondb error for a driver error, or None to let it through unchanged."""
    if is_disk_full(exc):
        return StorageFull(
            f"{url.redacted} has no space left: {describe(exc, url)}; free space on the "
            "disk that holds the database (or raise its quota), then retry"
        )
    if is_packet_too_large(exc):
        return ValidationError(packet_too_large(url))
    if is_transient(exc):
        return Unreachable(f"{describe(exc, url)}; is the database server up and reachable?")
    if is_config_error(exc):
        return ConfigError(
            f"cannot use {url.redacted}: {describe(exc, url)}; check the user, password and "
            "database name in the URL (create the database first if it is new)"
        )
    if isinstance(exc, sa.exc.IntegrityError):
        return Conflict(describe(exc, url))
    if "invalid connection option" in str(getattr(exc, "orig", "")):  # libpq refused a URL option
        return ConfigError(
            f"the database driver refused an option of {url.redacted}: {describe(exc, url)}; "
            "remove it from the URL (praisondb's own options are listed in README's URL section)"
        )
    if getattr(getattr(exc, "orig", None), "sqlstate", None) in _PREPARED_STATEMENT_LOST:
        return ConfigError(
            f"{describe(exc, url)}; a connection pooler in transaction mode (PgBouncer) "
            "loses prepared statements between transactions: add ?prepare_threshold=none "
            "to the URL"
        )
    return None


_PREPARED_STATEMENT_LOST = frozenset({"26000", "42P05"})
"""PostgreSQL: prepared statement missing / already exists (a transaction pooler's mark)."""


# -- a lock that serialises the single shared connection of sqlite:// (in memory) ----------
