"""How SQLite, PostgreSQL and MySQL/MariaDB hold values: codecs and column types.

One :class:`Codec` per dialect is the single source of truth for timestamps, free text
and JSON, used by the Core column types here and by the DBAPI fast path alike.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

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
    return orjson.loads(pg_json_text(data))


def pg_json_text(data: str) -> str:
    """jsonb's text as the JSON it stands for, NULs put back: what pg_json_loads parses."""
    return _TEXT_UNESCAPE.sub(_unescape_json_token, data) if _MARK in data else data


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


class SearchText(FreeText):
    """FreeText that a full-text index reads: on MySQL/MariaDB in a case-insensitive
    collation, since InnoDB FULLTEXT matches case-sensitively under the tables' binary one."""

    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name in MYSQL:
            return mysql.LONGTEXT(collation=SEARCH_COLLATION)
        return super().load_dialect_impl(dialect)


SEARCH_COLLATION = "utf8mb4_unicode_ci"


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
