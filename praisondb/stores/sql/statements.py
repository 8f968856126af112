"""Statements that differ between the dialects: upserts and index-range prefix bounds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql

from .._kit import prefix_upper_bound
from .types import MYSQL

__all__ = ["prefix_upper_bound", "upsert", "upsert_statement"]


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


def upsert_statement(dialect_name: str, table: sa.Table) -> sa.Executable:
    """``upsert`` with no values: compiled once with ``column_keys``, run with executemany."""
    keys = [c.name for c in table.primary_key.columns]
    columns = [c.name for c in table.columns if c.name not in keys]
    if dialect_name in MYSQL:
        mysql_stmt = mysql.insert(table)
        return mysql_stmt.on_duplicate_key_update(
            {name: mysql_stmt.inserted[name] for name in columns}
        )
    from sqlalchemy.dialects import sqlite

    dialect_insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    stmt = dialect_insert(table)
    return stmt.on_conflict_do_update(
        index_elements=keys, set_={name: stmt.excluded[name] for name in columns}
    )
