"""Engines for SQLite, PostgreSQL and MySQL/MariaDB: options, creation, connection hooks.

The store's options (URL query or keywords) become an :class:`EngineSettings`; the engine
gets each dialect's driver, pool and per-connection setup (SQLite pragmas and explicit
BEGIN, MySQL's cheap reset and packet check).

For the async face (``io="async"``) the engine is SQLAlchemy's async engine on the async
driver of the same database (aiosqlite, psycopg's async connection, aiomysql), and the
store runs its one, synchronous code on ``async_engine.sync_engine``: the adapted DBAPI
connections hand each driver await to the event loop (``await_only``) from the greenlet
the call runs in. Same options, pool settings and hooks either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.pool import StaticPool

from ...errors import ConfigError
from ...options import ABSENT, AUTO_MIGRATE, Option, OptionTable, as_bool, as_float, as_int, one_of
from ...urls import StoreURL, redact_text
from . import async_engine
from .packets import configure_mysql_packet_check
from .types import codec

DRIVERS = {
    "sqlite": "sqlite+pysqlite",
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
}
IO_MODES = ("sync", "async")
PREPARE_THRESHOLD = "prepare_threshold"
SYNCHRONOUS = frozenset({"OFF", "NORMAL", "FULL", "EXTRA"})


def _prepare_threshold(name: str, value: Any) -> int | None:
    """psycopg's ``prepare_threshold``: ``none`` turns server-side prepared statements off.

    Unset, psycopg's default stands (a statement is prepared on the server after five
    runs on one connection), which is faster on a direct connection. Behind a pooler that
    hands each transaction to any server connection (PgBouncer before 1.21, or later ones
    without ``max_prepared_statements``, in transaction mode) a statement prepared on one
    server connection is missing on the next: such URLs need ``prepare_threshold=none``.
    """
    if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdecimal():
        return int(value.strip())
    raise ConfigError(f"option {name} must be a whole number >= 0 or none, not {value!r}")


OPTIONS = OptionTable(
    Option("pool_size", as_int, ABSENT, doc="connections kept open"),
    Option("max_overflow", as_int, ABSENT, doc="connections opened beyond pool_size"),
    Option("pool_timeout", as_int, ABSENT, doc="seconds to wait for a free connection"),
    Option("pool_recycle", as_int, ABSENT, doc="seconds before a connection is replaced"),
    Option("pool_pre_ping", as_bool, ABSENT, doc="test a connection before each use"),
    Option("echo", as_bool, ABSENT, doc="log every statement"),
    Option("connect_timeout", as_float, 10.0, doc="seconds to wait for a connection"),
    Option("synchronous", one_of(*SYNCHRONOUS), "NORMAL", doc="SQLite's synchronous pragma"),
    Option("busy_timeout", as_int, 60_000, doc="SQLite: ms to wait for a lock"),
    AUTO_MIGRATE,
    Option(
        PREPARE_THRESHOLD,
        _prepare_threshold,
        ABSENT,
        doc="PostgreSQL: runs before psycopg prepares a statement; none behind PgBouncer",
        none_is_value=True,
    ),
    driver_query=True,
)
ENGINE_OPTIONS = (
    "pool_size",
    "max_overflow",
    "pool_timeout",
    "pool_recycle",
    "pool_pre_ping",
    "echo",
)
URL_OPTIONS = OPTIONS.names


@dataclass(frozen=True)
class EngineSettings:
    """The options of one store, merged from the URL query and keyword arguments."""

    engine: dict[str, Any]
    connect_timeout: float
    synchronous: str
    busy_timeout_ms: int
    auto_migrate: bool
    driver_args: dict[str, Any] = field(default_factory=dict)
    """Extra keyword arguments for the driver's connect() (psycopg: prepare_threshold)."""


def parse_options(url: StoreURL, options: Mapping[str, Any]) -> EngineSettings:
    """Merge URL query options with keyword options (keywords win); unknown keywords fail."""
    values = OPTIONS.read(url, options)
    driver_args: dict[str, Any] = {}
    if PREPARE_THRESHOLD in values:
        if url.family != "postgresql":
            raise ConfigError(
                f"option {PREPARE_THRESHOLD} is for PostgreSQL (psycopg) only, not {url.redacted}"
            )
        driver_args[PREPARE_THRESHOLD] = values[PREPARE_THRESHOLD]
    return EngineSettings(
        engine={name: values[name] for name in ENGINE_OPTIONS if name in values},
        connect_timeout=values["connect_timeout"],
        synchronous=values["synchronous"],
        busy_timeout_ms=values["busy_timeout"],
        auto_migrate=values["auto_migrate"],
        driver_args=driver_args,
    )


def is_memory_sqlite(url: StoreURL) -> bool:
    return url.family == "sqlite" and url.path in {"", ":memory:"}


def driver_url(url: StoreURL, io: str = "sync") -> URL:
    """The SQLAlchemy URL: our own query options removed, the driver pinned (the async
    one of the same database for ``io="async"``)."""
    try:
        parsed = make_url(url.secret)
    except Exception as exc:  # noqa: BLE001 - any parse failure is a config problem
        raise ConfigError(f"cannot parse {url.redacted}: {type(exc).__name__}") from None
    driver = (async_engine.DRIVERS if io == "async" else DRIVERS).get(url.family)
    if driver is None:
        raise ConfigError(f"{url.redacted} is not a SQL URL")
    query = {k: v for k, v in parsed.query.items() if k not in URL_OPTIONS}
    if url.family == "mysql":
        if url.scheme.startswith("mariadb"):
            driver = "mariadb+" + driver.split("+", 1)[1]
        query["charset"] = "utf8mb4"
    return parsed.set(drivername=driver, query=query)


def create_engine(url: StoreURL, settings: EngineSettings, *, io: str = "sync") -> Engine:
    """The engine of ``url``; for ``io="async"`` the sync face of an async engine (see the
    module docstring), to be used only from the async face's greenlets."""
    if io not in IO_MODES:
        raise ConfigError(f"io must be one of {', '.join(IO_MODES)}, not {io!r}")
    target = driver_url(url, io)
    if url.family == "sqlite" and not is_memory_sqlite(url):
        _check_sqlite_directory(url)
    kwargs: dict[str, Any] = dict(settings.engine)
    family = url.family
    json_codec = codec(family)
    kwargs["json_serializer"] = json_codec.json_dumps
    kwargs["json_deserializer"] = json_codec.json_loads
    if family == "sqlite":
        kwargs["connect_args"] = {
            "check_same_thread": False,
            "timeout": settings.busy_timeout_ms / 1000,
        }
        if is_memory_sqlite(url):
            kwargs = {
                k: v
                for k, v in kwargs.items()
                if k not in {"pool_size", "max_overflow", "pool_timeout"}
            }
            kwargs["poolclass"] = StaticPool
        if io == "async":
            kwargs["pool_reset_on_return"] = None  # _configure_async_sqlite_reset does it
    elif family == "postgresql":
        kwargs["connect_args"] = {
            "connect_timeout": max(1, round(settings.connect_timeout)),
            **settings.driver_args,
        }
    else:
        kwargs["connect_args"] = {"connect_timeout": max(1, round(settings.connect_timeout))}
        # READ COMMITTED: locking reads of a missing row take no gap locks, so racing
        # creators of one state key get a duplicate-key error (retried) instead of a deadlock.
        kwargs["isolation_level"] = "READ COMMITTED"
        kwargs["pool_reset_on_return"] = None  # _configure_mysql_reset does it, when needed
    if kwargs.get("poolclass") is not StaticPool:
        # Reuse the most recently returned connection: its page cache is warm (with SQLite
        # WAL, switching connections costs a cache re-validation per transaction), and
        # surplus connections sit idle long enough for pool_recycle / server timeouts.
        kwargs["pool_use_lifo"] = True
    try:
        if io == "async":
            engine = async_engine.create(target, kwargs)
        else:
            engine = sa.create_engine(target, **kwargs)
    except ImportError as exc:  # SQLAlchemy imports the driver here (psycopg, pymysql)
        raise async_engine.missing_driver(url, exc) from None
    except (TypeError, ValueError, sa.exc.ArgumentError) as exc:
        raise ConfigError(
            f"cannot configure {url.redacted}: {redact_text(str(exc), url.secret)}"
        ) from None
    if family == "sqlite":
        _configure_sqlite(engine, settings)
        if io == "async":
            _configure_async_sqlite_reset(engine)
        if is_memory_sqlite(url):
            _keep_memory_connection(engine)
    elif family == "mysql":
        _configure_mysql_reset(engine)
        configure_mysql_packet_check(engine, url)
    return engine


def _keep_memory_connection(engine: Engine) -> None:
    """In-memory SQLite is its one connection: never discard it for an interruption.

    SQLAlchemy invalidates a connection whose statement was interrupted (a cancelled
    task, KeyboardInterrupt), since a server connection may then be mid-reply. A SQLite
    call is never cut in half (sqlite3 runs it to the end; aiosqlite runs queued calls in
    order on its thread, a cancelled caller's too), so the rollback that follows is
    sound, while replacing the connection would silently replace the whole database
    with an empty one.
    """

    @event.listens_for(engine, "handle_error")
    def _on_error(context: Any) -> None:
        if not isinstance(context.original_exception, Exception):
            context.is_disconnect = False


def _configure_async_sqlite_reset(engine: Engine) -> None:
    """aiosqlite: roll back on return to the pool only when a transaction may be open.

    Each call is a trip to the connection's thread and back, so the fast path's clean
    returns (flagged :data:`CLEAN`) and connections SQLAlchemy has already reset skip it.
    A cancelled rollback still runs (aiosqlite queues it before anything else on the
    connection), so the pool keeps the connection instead of discarding it (in memory:
    the whole database), and the call that returned it ends as it would have.
    """

    @event.listens_for(engine, "reset")
    def _on_reset(dbapi_connection: Any, record: Any, state: Any) -> None:
        if record is not None and record.info.pop(CLEAN, False):
            return
        if state.terminate_only or state.transaction_was_reset:
            return
        with contextlib.suppress(asyncio.CancelledError):
            dbapi_connection.rollback()


def _check_sqlite_directory(url: StoreURL) -> None:
    """SQLite creates the file but not its directory, and then only says "unable to open
    database file": name the missing directory instead (creating it silently could hide
    a typo in the path)."""
    path = url.path.split("?", 1)[0]
    if path.startswith("file:"):
        return  # an SQLite URI filename: SQLite resolves it
    directory = Path(path).expanduser().absolute().parent
    if not directory.is_dir():
        what = "is not a directory" if directory.exists() else "does not exist"
        raise ConfigError(
            f"cannot open {url.redacted}: the directory {directory} {what}; create it "
            "first (mkdir -p) or fix the path (sqlite:///relative.db, sqlite:////absolute.db)"
        )


CLEAN = "praisondb_clean"
"""Pool-entry info flag: the transaction was just committed; no rollback on return."""


def _configure_mysql_reset(engine: Engine) -> None:
    """Roll back on return to the pool only when a transaction may still be open.

    The pool's usual reset-on-return is a ROLLBACK, which PyMySQL always sends to the
    server: a whole round trip after every fast-path append that had just committed
    (~15% of a one-message append). The fast path flags such a connection with
    :data:`CLEAN`; everything else is rolled back as before, and a connection that
    SQLAlchemy already reset (or is discarding) is left alone.
    """

    @event.listens_for(engine, "reset")
    def _on_reset(dbapi_connection: Any, record: Any, state: Any) -> None:
        if record is not None and record.info.pop(CLEAN, False):
            return
        if not (state.terminate_only or state.transaction_was_reset):
            dbapi_connection.rollback()


WRITE = "praisondb_write"
"""Execution option: this transaction will write (SQLite takes the write lock up front)."""


def _configure_sqlite(engine: Engine, settings: EngineSettings) -> None:
    """Pragmas on every connection, and explicit BEGIN / BEGIN IMMEDIATE.

    pysqlite's own transaction handling is switched off (isolation_level=None) so that
    SQLAlchemy's begin() really starts a transaction; writers use BEGIN IMMEDIATE so two
    writers queue on busy_timeout instead of failing on a read-to-write lock upgrade.
    """
    pragmas = (
        f"PRAGMA busy_timeout = {int(settings.busy_timeout_ms)}",
        "PRAGMA journal_mode = WAL",
        f"PRAGMA synchronous = {settings.synchronous}",
        "PRAGMA foreign_keys = ON",
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            for pragma in pragmas:
                cursor.execute(pragma)
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


# -- statements that differ ----------------------------------------------------------------


# -- a lock that serialises the single shared connection of sqlite:// (in memory) ----------


class NullLock:
    """A context manager that does nothing, for stores with a real connection pool."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *_exc: object) -> None:
        return None


def connection_guard(
    url: StoreURL, io: str = "sync"
) -> threading.RLock | async_engine.GreenletLock | NullLock:
    """What serialises the users of one shared connection (in-memory SQLite only)."""
    if not is_memory_sqlite(url):
        return NullLock()
    return async_engine.GreenletLock() if io == "async" else threading.RLock()
