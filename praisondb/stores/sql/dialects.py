"""Everything that differs between SQLite, PostgreSQL and MySQL/MariaDB, in one place.

The store (:mod:`praisondb.stores.sql.store`) and the migrations call these helpers instead of
branching on the dialect themselves: column types, value codecs, engine options,
row locks and upserts, and which driver errors are worth retrying.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.engine import URL, Connection, Dialect, Engine, make_url
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

from ...errors import ConfigError, Conflict, StorageFull, ValidationError
from ...retry import driver_text
from ...urls import StoreURL, redact_text

MYSQL = ("mysql", "mariadb")
UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

# -- value codecs ---------------------------------------------------------------------
# PostgreSQL's text and jsonb refuse U+0000. We escape it reversibly with a private-use
# marker: U+E000 "0" stands for NUL and U+E000 "1" for a literal U+E000, so every string
# (including ones that already contain the marker) comes back exactly.
_MARK = "\ue000"
_MARK_BYTES = _MARK.encode()
_TEXT_ESCAPE = re.compile("[\x00\ue000]")
_TEXT_UNESCAPE = re.compile("\ue000([01])")
# In JSON text a NUL is the escape \u0000; a preceding escaped backslash (\\) must not be
# mistaken for the start of one, so pairs of backslashes are matched (and kept) first.
_JSON_ESCAPE = re.compile(r"\\\\|\\u0000|\ue000")


def escape_text(value: str) -> str:
    if "\x00" not in value and _MARK not in value:
        return value
    return _TEXT_ESCAPE.sub(lambda m: _MARK + ("0" if m.group() == "\x00" else "1"), value)


def unescape_text(value: str) -> str:
    if _MARK not in value:
        return value
    return _TEXT_UNESCAPE.sub(lambda m: "\x00" if m.group(1) == "0" else _MARK, value)


_ESCAPED_BACKSLASH = "\\\\"
_NUL_ESCAPE = "\\u0000"


def _escape_json_token(match: re.Match[str]) -> str:
    found = match.group()
    if found == _ESCAPED_BACKSLASH:
        return found
    return _MARK + ("0" if found == _NUL_ESCAPE else "1")


def _unescape_json_token(match: re.Match[str]) -> str:
    return "\\u0000" if match.group(1) == "0" else _MARK


def json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def json_loads(data: str | bytes | bytearray | memoryview | float) -> Any:
    if isinstance(data, (int, float)):
        # A JSON column has NUMERIC affinity in SQLite: a bare number comes back as one.
        return data
    if isinstance(data, memoryview):
        data = bytes(data)
    return orjson.loads(data)


# jsonb keeps numbers as NUMERIC: a float orjson spells with a positive exponent (1e+16,
# 1.5e+16: every float from 1e16 up) would come back as an integer. Spelled out with a
# ".0" it stays a float. Strings are matched first so that text like "1e16" is kept.
_BIG_FLOAT = re.compile(rb'"(?:[^"\\]|\\.)*"|(-?\d+(?:\.\d+)?e\+\d+)')


def _spell_float(match: re.Match[bytes]) -> bytes:
    if match.group(1) is None:
        return match.group()
    return b"%d.0" % int(float(match.group(1)))


def _pg_orjson(value: Any) -> bytes:
    data = orjson.dumps(value)
    if b"e+" not in data:
        return data
    return _BIG_FLOAT.sub(_spell_float, data)


def pg_json_dumps(value: Any) -> str:
    text = _pg_orjson(value).decode()
    if "\\u0000" not in text and _MARK not in text:
        return text
    return _JSON_ESCAPE.sub(_escape_json_token, text)


def pg_json_bytes(value: Any) -> bytes:
    """``pg_json_dumps`` as UTF-8 bytes, without a round trip through str when nothing needs escaping."""
    data = _pg_orjson(value)
    if b"\\u0000" not in data and _MARK_BYTES not in data:
        return data
    return pg_json_dumps(value).encode()


def pg_json_loads(data: str | bytes | bytearray | memoryview) -> Any:
    if isinstance(data, memoryview):
        data = bytes(data)
    if isinstance(data, (bytes, bytearray)):
        if _MARK_BYTES not in data:
            return orjson.loads(data)
        data = data.decode()
    if _MARK in data:
        data = _TEXT_UNESCAPE.sub(_unescape_json_token, data)
    return orjson.loads(data)


def to_micros(value: datetime) -> int:
    """Integer microseconds since the epoch: SQLite sorts and compares them exactly and fast."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - EPOCH) // _MICROSECOND


def from_micros(value: int) -> datetime:
    return EPOCH + timedelta(0, 0, value)  # positional: a third faster than microseconds=


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _naive_utc(value: datetime) -> datetime:
    return _aware(value).astimezone(UTC).replace(tzinfo=None)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Codec:
    """How one dialect stores timestamps, free text and JSON; the single source of truth
    for both the Core column types below and the DBAPI fast path."""

    ts_bind: Callable[[datetime], Any]
    ts_result: Callable[[Any], datetime]
    text_bind: Callable[[str], str]
    text_result: Callable[[str], str]
    json_dumps: Callable[[Any], str]
    json_loads: Callable[[Any], Any]


_CODECS = {
    "sqlite": Codec(to_micros, from_micros, _same, _same, json_dumps, json_loads),
    "postgresql": Codec(_aware, _utc, escape_text, unescape_text, pg_json_dumps, pg_json_loads),
    "mysql": Codec(_naive_utc, _utc, _same, _same, json_dumps, json_loads),
}


def codec(dialect_name: str) -> Codec:
    return _CODECS["mysql" if dialect_name in MYSQL else dialect_name]


# -- column types -------------------------------------------------------------------
# The migrations spell out the same DDL types literally (a migration must not change when
# this module does); ``praisondb.stores.sql.migrate.check`` proves the two agree.


class UTCTimestamp(TypeDecorator[datetime]):
    """Aware UTC datetimes with microseconds on every dialect.

    SQLite: integer microseconds since the epoch. PostgreSQL: timestamptz.
    MySQL/MariaDB: DATETIME(6) holding naive UTC.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.BigInteger())
        if dialect.name in MYSQL:
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(postgresql.TIMESTAMP(timezone=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else codec(dialect.name).ts_bind(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else codec(dialect.name).ts_result(value)


class FreeText(TypeDecorator[str]):
    """Unbounded text that may hold NUL: LONGTEXT on MySQL, escaped on PostgreSQL."""

    impl = sa.Text()
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        # Not through dialect.type_descriptor: PostgreSQL's would adapt TEXT to VARCHAR.
        return mysql.LONGTEXT() if dialect.name in MYSQL else sa.TEXT()

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else codec(dialect.name).text_bind(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else codec(dialect.name).text_result(value)


def json_type() -> sa.types.TypeEngine[Any]:
    """JSONB on PostgreSQL, JSON elsewhere; (de)serialised by the engine's orjson codec."""
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def id_type(length: int = 255) -> sa.types.TypeEngine[Any]:
    """Ids and keys compare by code point everywhere (PostgreSQL: the "C" collation).

    MySQL/MariaDB get the same from the table's binary, no-pad collation.
    """
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def table_options() -> dict[str, Any]:
    """utf8mb4 for 4-byte characters; a binary NO PAD collation so 'a' != 'a ' and 'A' != 'a'."""
    options: dict[str, Any] = {}
    for prefix in MYSQL:
        options[f"{prefix}_engine"] = "InnoDB"
        options[f"{prefix}_charset"] = "utf8mb4"
        options[f"{prefix}_collate"] = MYSQL_COLLATION
    return options


MYSQL_COLLATION = "utf8mb4_nopad_bin"
"""MariaDB's binary NO PAD collation (MySQL 8 calls its equivalent utf8mb4_0900_bin)."""


# -- engines ----------------------------------------------------------------------------

DRIVERS = {
    "sqlite": "sqlite+pysqlite",
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
}

_BOOL = {
    "1": True,
    "true": True,
    "yes": True,
    "on": True,
    "0": False,
    "false": False,
    "no": False,
    "off": False,
}
ENGINE_OPTIONS = (
    "pool_size",
    "max_overflow",
    "pool_timeout",
    "pool_recycle",
    "pool_pre_ping",
    "echo",
)
PREPARE_THRESHOLD = "prepare_threshold"
URL_OPTIONS = frozenset(
    {
        *ENGINE_OPTIONS,
        "connect_timeout",
        "synchronous",
        "busy_timeout",
        "auto_migrate",
        PREPARE_THRESHOLD,
    }
)
SYNCHRONOUS = frozenset({"OFF", "NORMAL", "FULL", "EXTRA"})


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
    unknown = sorted(set(options) - URL_OPTIONS)
    if unknown:
        raise ConfigError(
            f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} for {url.redacted}; "
            f"accepted: {', '.join(sorted(URL_OPTIONS))}"
        )
    merged: dict[str, Any] = {k: v for k, v in url.options.items() if k in URL_OPTIONS}
    merged.update(options)
    engine: dict[str, Any] = {}
    for name in ENGINE_OPTIONS:
        if name in merged:
            engine[name] = _coerce(
                name, merged[name], bool if name in {"pool_pre_ping", "echo"} else int
            )
    synchronous = str(merged.get("synchronous", "NORMAL")).upper()
    if synchronous not in SYNCHRONOUS:
        raise ConfigError(f"synchronous must be one of {sorted(SYNCHRONOUS)}, not {synchronous!r}")
    driver_args: dict[str, Any] = {}
    if PREPARE_THRESHOLD in merged:
        driver_args[PREPARE_THRESHOLD] = _prepare_threshold(url, merged[PREPARE_THRESHOLD])
    return EngineSettings(
        engine=engine,
        connect_timeout=float(_coerce("connect_timeout", merged.get("connect_timeout", 10), float)),
        synchronous=synchronous,
        busy_timeout_ms=int(_coerce("busy_timeout", merged.get("busy_timeout", 60_000), int)),
        auto_migrate=bool(_coerce("auto_migrate", merged.get("auto_migrate", False), bool)),
        driver_args=driver_args,
    )


def _prepare_threshold(url: StoreURL, value: Any) -> int | None:
    """psycopg's ``prepare_threshold``: ``none`` turns server-side prepared statements off.

    Unset, psycopg's default stands (a statement is prepared on the server after five
    runs on one connection), which is faster on a direct connection. Behind a pooler that
    hands each transaction to any server connection (PgBouncer before 1.21, or later ones
    without ``max_prepared_statements``, in transaction mode) a statement prepared on one
    server connection is missing on the next: such URLs need ``prepare_threshold=none``.
    """
    if url.family != "postgresql":
        raise ConfigError(
            f"option {PREPARE_THRESHOLD} is for PostgreSQL (psycopg) only, not {url.redacted}"
        )
    if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdecimal():
        return int(value.strip())
    raise ConfigError(
        f"option {PREPARE_THRESHOLD} must be a whole number >= 0 or none, not {value!r} "
        f"(for {url.redacted})"
    )


def _coerce(name: str, value: Any, kind: type) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _BOOL:
            return _BOOL[text]
    else:
        try:
            return kind(value)
        except (TypeError, ValueError):
            pass
    raise ConfigError(f"option {name} must be {kind.__name__}, not {value!r}")


def is_memory_sqlite(url: StoreURL) -> bool:
    return url.family == "sqlite" and url.path in {"", ":memory:"}


def driver_url(url: StoreURL) -> URL:
    """The SQLAlchemy URL: our own query options removed, the driver pinned."""
    try:
        parsed = make_url(url.secret)
    except Exception as exc:  # noqa: BLE001 - any parse failure is a config problem
        raise ConfigError(f"cannot parse {url.redacted}: {type(exc).__name__}") from None
    driver = DRIVERS.get(url.family)
    if driver is None:
        raise ConfigError(f"{url.redacted} is not a SQL URL")
    query = {k: v for k, v in parsed.query.items() if k not in URL_OPTIONS}
    if url.family == "mysql":
        driver = "mariadb+pymysql" if url.scheme.startswith("mariadb") else driver
        query["charset"] = "utf8mb4"
    return parsed.set(drivername=driver, query=query)


def create_engine(url: StoreURL, settings: EngineSettings) -> Engine:
    target = driver_url(url)
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
        engine = sa.create_engine(target, **kwargs)
    except ImportError as exc:  # SQLAlchemy imports the driver here (psycopg, pymysql)
        raise url.missing_driver(exc) from None
    except (TypeError, ValueError, sa.exc.ArgumentError) as exc:
        raise ConfigError(
            f"cannot configure {url.redacted}: {redact_text(str(exc), url.secret)}"
        ) from None
    if family == "sqlite":
        _configure_sqlite(engine, settings)
    elif family == "mysql":
        _configure_mysql_reset(engine)
        _configure_mysql_packet_check(engine, url)
    return engine


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


_MAX_PACKET = "praisondb_max_allowed_packet"
PACKET_CHECK_FROM = 1 << 20
"""Values below this are never checked against MySQL's max_allowed_packet."""
PACKET_OVERHEAD = 64 * 1024
"""The rest of a statement around its biggest value: ids, metadata, SQL text."""


def _configure_mysql_packet_check(engine: Engine, url: StoreURL) -> None:
    """Refuse a statement with a value over ``max_allowed_packet`` before sending it.

    The server would drop the connection (error 2006/2013, which looks like an outage
    and is retried) or refuse it (1153). Only single statements are checked here; the
    message write paths check their batches themselves (``SQLStore._check_packet``).
    """

    @event.listens_for(engine, "before_cursor_execute")
    def _check(
        conn: Connection,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        if executemany or not parameters:
            return
        values = parameters.values() if isinstance(parameters, Mapping) else parameters
        size = max((len(v) for v in values if isinstance(v, (str, bytes))), default=0)
        if size < PACKET_CHECK_FROM:
            return
        limit = conn.info.get(_MAX_PACKET)
        if limit is None:
            probe = cursor.connection.cursor()
            try:
                probe.execute("SELECT @@max_allowed_packet")
                limit = conn.info[_MAX_PACKET] = int(probe.fetchone()[0])
            finally:
                probe.close()
        if size + PACKET_OVERHEAD > limit:
            raise ValidationError(packet_too_large(url, size, limit))


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


def upsert(dialect_name: str, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> sa.Executable:
    """INSERT ... ON CONFLICT (primary key) DO UPDATE every other column."""
    keys = [c.name for c in table.primary_key.columns]
    columns = [c.name for c in table.columns if c.name not in keys]
    if dialect_name in MYSQL:
        mysql_stmt = mysql.insert(table).values(list(rows))
        return mysql_stmt.on_duplicate_key_update(
            {name: mysql_stmt.inserted[name] for name in columns}
        )
    if dialect_name == "postgresql":
        pg_stmt = postgresql.insert(table).values(list(rows))
        return pg_stmt.on_conflict_do_update(
            index_elements=keys, set_={name: pg_stmt.excluded[name] for name in columns}
        )
    from sqlalchemy.dialects import sqlite

    lite_stmt = sqlite.insert(table).values(list(rows))
    return lite_stmt.on_conflict_do_update(
        index_elements=keys, set_={name: lite_stmt.excluded[name] for name in columns}
    )


def prefix_upper_bound(prefix: str) -> str | None:
    """The smallest string greater than every string starting with ``prefix``.

    Lets a prefix search be an index range (``key >= prefix AND key < bound``) with no
    LIKE wildcards to escape; valid because every dialect compares ids by code point.
    """
    chars = list(prefix)
    while chars:
        code = ord(chars[-1]) + 1
        if code == 0xD800:
            code = 0xE000  # skip the surrogate block: it cannot be stored
        if code <= 0x10FFFF:
            chars[-1] = chr(code)
            return "".join(chars)
        chars.pop()
    return None


# -- errors ---------------------------------------------------------------------------------

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


def packet_too_large(url: StoreURL, size: int | None = None, limit: int | None = None) -> str:
    """How to fix a value over MySQL/MariaDB's ``max_allowed_packet``."""
    what = f"a value of {_mib(size)}" if size is not None else "a statement"
    cap = f" ({_mib(limit)})" if limit is not None else ""
    return (
        f"{what} is over the max_allowed_packet{cap} of {url.redacted}: raise it on the "
        "server (SET GLOBAL max_allowed_packet = 1073741824, and max_allowed_packet = 1G "
        "under [mysqld] in my.cnf to keep it; 1 GiB is the most), or store big payloads "
        "elsewhere and keep a reference"
    )


def _mib(size: int) -> str:
    return f"{size / 1048576:.1f} MiB"


def message_bytes(messages: Sequence[Any]) -> int:
    """The size of the biggest message's content as sent (each row is its own packet or
    shares one with smaller rows); 0 when every message is small."""
    largest = 0
    for message in messages:
        content = message.content
        if isinstance(content, str):
            size = len(content) if len(content) < _SMALL else len(content.encode())
        else:
            size = len(orjson.dumps(content))
        largest = max(largest, size)
    return largest


_SMALL = 1 << 18
"""Below this many characters the length stands in for the UTF-8 size (encoding a huge
value to count its bytes is worth it only where the size can matter)."""


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


class NullLock:
    """A context manager that does nothing, for stores with a real connection pool."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *_exc: object) -> None:
        return None


def connection_guard(url: StoreURL) -> threading.RLock | NullLock:
    return threading.RLock() if is_memory_sqlite(url) else NullLock()
