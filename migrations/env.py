"""Alembic environment for the praisondb SQL schema.

Used by :mod:`praisondb.stores.sql.migrate` (and so by ``praisondb db upgrade``), which hands over
either a live connection in ``config.attributes["connection"]`` (the caller owns the
transaction and any migration lock) or, for offline ``--sql`` mode, a URL in
``config.attributes["url"]``. Running plain ``alembic`` works too: pass the URL with
``-x url=...`` or ``sqlalchemy.url``.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy.engine import Connection

from praisondb.stores.sql import dialects as sql_dialects
from praisondb.stores.sql.schema import VERSION_TABLE, include_name, metadata
from praisondb.urls import StoreURL, parse_url

config = context.config


def _options() -> dict[str, Any]:
    return {
        "target_metadata": metadata,
        "version_table": VERSION_TABLE,
        "include_name": include_name,
        "compare_type": True,
    }


def _url() -> StoreURL:
    url = config.attributes.get("url")
    if isinstance(url, StoreURL):
        return url
    text = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not text:
        raise SystemExit("no database URL: pass -x url=... or set sqlalchemy.url")
    return parse_url(text)


def run_migrations_offline() -> None:
    """Write the SQL to the output instead of running it."""
    url = _url()
    context.configure(
        url=sql_dialects.driver_url(url),
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=url.family == "sqlite",
        **_options(),
    )
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        render_as_batch=connection.dialect.name == "sqlite",
        **_options(),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = _url()
    engine = sql_dialects.create_engine(url, sql_dialects.parse_options(url, {}))
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
