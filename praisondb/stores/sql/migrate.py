"""Schema migrations for the SQL backend, as plain functions over Alembic.

``praisondb db upgrade|downgrade|current|history`` is a thin layer over these; the SQL
store calls :func:`ensure_schema` when it opens. The Alembic scripts ship inside the
wheel as ``praisondb/_migrations`` and live in the repository as ``migrations/``.

Upgrades and downgrades take a database-wide lock first (SQLite: the write lock of
``BEGIN IMMEDIATE``; PostgreSQL: a transaction advisory lock; MySQL/MariaDB:
``GET_LOCK``) and re-read the revision under it, so several processes migrating one
database at once is safe: one migrates, the others find the schema already at head.
"""

from __future__ import annotations

import contextlib
import functools
import io
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from ...errors import BackendUnavailable, ConfigError, PraisonDBError, SchemaOutOfDate
from ...retry import Retry
from ...urls import StoreURL, parse_url
from .engine import WRITE, create_engine, parse_options
from .errors import is_retryable, translate
from .schema import VERSION_TABLE, include_name, metadata
from .types import MYSQL

T = TypeVar("T")

_PG_LOCK_KEY = 0x70726169736F6E  # "praison": one advisory lock id for every praisondb schema
_MYSQL_LOCK = "praisondb_migrate"
_LOCK_TIMEOUT_S = 300


def script_location() -> Path:
    """The Alembic scripts: inside the installed wheel, else the repository's ``migrations/``."""
    package = Path(__file__).resolve().parents[2]  # praisondb/stores/sql/migrate.py
    shipped = package / "_migrations"
    if (shipped / "env.py").is_file():
        return shipped
    repo = package.parent / "migrations"
    if (repo / "env.py").is_file():
        return repo
    raise ConfigError(f"praisondb's migration scripts are missing (looked in {shipped} and {repo})")


def alembic_config(
    *,
    url: StoreURL | None = None,
    connection: Connection | None = None,
    output: TextIO | None = None,
) -> Config:
    """An Alembic Config built in code (no alembic.ini), pointing at our scripts.

    ``output`` receives the SQL of offline (``sql=True``) runs; Alembic's own chatter
    is discarded (the CLI prints its own summary).
    """
    config = Config(stdout=io.StringIO(), output_buffer=output)
    config.set_main_option("script_location", str(script_location()))
    if url is not None:
        config.attributes["url"] = url
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.lru_cache(maxsize=1)
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head() -> str:
    """The newest revision this version of praisondb knows."""
    revision = _scripts().get_current_head()
    if revision is None:  # pragma: no cover - the package always ships revisions
        raise ConfigError("praisondb ships no schema revisions")
    return revision


@dataclass(frozen=True)
class Revision:
    revision: str
    down_revision: str | None
    message: str
    is_head: bool
    is_current: bool = False


def history(url: str | StoreURL | None = None, **options: Any) -> list[Revision]:
    """Every revision, oldest first; with a URL, the one the database is at is marked."""
    applied = current(url, **options) if url is not None else None
    found = []
    for script in _scripts().walk_revisions():
        down = script.down_revision
        found.append(
            Revision(
                revision=script.revision,
                down_revision=down if isinstance(down, str) or down is None else ",".join(down),
                message=(script.doc or "").strip().splitlines()[0] if script.doc else "",
                is_head=script.is_head,
                is_current=script.revision == applied,
            )
        )
    return list(reversed(found))


def current(url: str | StoreURL, **options: Any) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with _engine(url, options) as (engine, parsed):
        return _call(parsed, lambda: current_on(engine), "reading the schema revision")


def upgrade(
    url: str | StoreURL,
    revision: str = "head",
    *,
    sql: bool = False,
    output: TextIO | None = None,
    **options: Any,
) -> str | None:
    """Upgrade the database to ``revision``; returns the revision it ends at.

    With ``sql=True`` nothing is touched: the SQL is written to ``output`` (offline mode).
    """
    parsed = _parse(url)
    if sql:
        config = alembic_config(url=parsed, output=output or sys.stdout)
        command.upgrade(config, revision, sql=True)
        return None
    with _engine(parsed, options) as (engine, _):
        return _call(parsed, lambda: upgrade_engine(engine, revision), "schema upgrade")


def downgrade(
    url: str | StoreURL,
    revision: str,
    *,
    sql: bool = False,
    output: TextIO | None = None,
    **options: Any,
) -> str | None:
    """Downgrade the database to ``revision`` (``base`` drops every praisondb table).

    Returns the revision it ends at (None at base). Destroys the data of every table a
    reverted revision created: callers ask for confirmation (the CLI wants ``--yes``).
    With ``sql=True`` nothing is touched: the SQL is written to ``output``; offline mode
    needs the starting revision, e.g. ``0002:0001``.
    """
    parsed = _parse(url)
    if sql:
        config = alembic_config(url=parsed, output=output or sys.stdout)
        command.downgrade(config, revision, sql=True)
        return None
    if revision not in {"base", "head"} and not _known(revision):
        raise ConfigError(f"unknown schema revision {revision!r}; see `praisondb db history`")
    with _engine(parsed, options) as (engine, _):
        return _call(
            parsed, lambda: _migrate_engine(engine, revision, command.downgrade), "downgrade"
        )


def check(url: str | StoreURL, **options: Any) -> list[Any]:
    """Differences between the migrated database and ``sql_schema`` (empty means in sync)."""
    with _engine(url, options) as (engine, parsed):

        def compare() -> list[Any]:
            with engine.connect() as conn:
                context = MigrationContext.configure(
                    conn,
                    opts={
                        "target_metadata": metadata,
                        "version_table": VERSION_TABLE,
                        "include_name": include_name,
                        "compare_type": True,
                    },
                )
                return list(compare_metadata(context, metadata))

        return _call(parsed, compare, "schema check")


# -- used by the store -------------------------------------------------------------------


def current_on(engine: Engine) -> str | None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def upgrade_engine(engine: Engine, revision: str = "head") -> str | None:
    """Take the migration lock, re-read the revision, and upgrade if still needed."""
    return _migrate_engine(engine, revision, command.upgrade)


def _migrate_engine(
    engine: Engine, revision: str, step: Callable[[Config, str], None] | None
) -> str | None:
    """Run an Alembic step under the migration lock, in one transaction; the revision after.

    With no ``step``, only wait for the lock and read the revision a concurrent migration
    left behind."""
    dialect = engine.dialect.name
    target = {"head": head(), "base": None}.get(revision, revision)
    with engine.connect() as conn:
        if dialect == "sqlite":
            conn.execution_options(**{WRITE: True})
        with _mysql_lock(conn), conn.begin():
            if dialect == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
            context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
            before = context.get_current_revision()
            if is_newer_than_known(before):
                raise newer_than_known(str(before), _shown(engine))
            if step is not None and before != target:
                step(alembic_config(connection=conn), revision)
            after = MigrationContext.configure(
                conn, opts={"version_table": VERSION_TABLE}
            ).get_current_revision()
    return after


def ensure_schema(engine: Engine, url: StoreURL, *, auto_migrate: bool) -> str:
    """Check the schema when a store opens; upgrade a fresh SQLite file (or when asked).

    A server database (or an SQLite file already holding an older schema) that is behind
    raises SchemaOutOfDate unless ``auto_migrate`` is true: migrating a shared database
    should be a deliberate step, not a side effect of the first app instance to start.
    """
    wanted = head()
    applied = current_on(engine)
    if applied == wanted:
        return applied
    if applied is not None and not _known(applied):
        raise newer_than_known(applied, url.redacted)
    if auto_migrate or (applied is None and url.family == "sqlite"):
        return upgrade_engine(engine) or wanted
    # Another process may be migrating right now (MySQL's DDL is visible half-done; a
    # PostgreSQL migration shows nothing until it commits): read again once it is done.
    applied = _migrate_engine(engine, "head", None)
    if applied == wanted:
        return applied
    raise SchemaOutOfDate(applied, wanted, url=url.redacted)


def is_newer_than_known(revision: str | None) -> bool:
    """True for a revision this praisondb does not ship: a newer praisondb migrated it."""
    return revision is not None and not _known(revision)


def newer_than_known(applied: str, where: str | None = None) -> ConfigError:
    """The error for a database that a newer praisondb has migrated: Alembic cannot move
    it, and this praisondb may not read it correctly; the fix is a newer praisondb."""
    return ConfigError(
        f"{where or 'the database'} is at schema revision {applied}, newer than this "
        f"praisondb knows (it knows up to {head()}); upgrade praisondb "
        "(pip install -U praisondb) instead of migrating the database"
    )


def _known(revision: str) -> bool:
    try:
        return _scripts().get_revision(revision) is not None
    except Exception:  # noqa: BLE001 - alembic raises several types for unknown ids
        return False


# -- plumbing ------------------------------------------------------------------------------


def _shown(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _parse(url: str | StoreURL) -> StoreURL:
    parsed = url if isinstance(url, StoreURL) else parse_url(url)
    if parsed.backend.name != "sql":
        raise ConfigError(f"{parsed.redacted} is not a SQL database; migrations are for SQL only")
    return parsed


@contextlib.contextmanager
def _engine(url: str | StoreURL, options: dict[str, Any]) -> Iterator[tuple[Engine, StoreURL]]:
    parsed = _parse(url)
    options = {k: v for k, v in options.items() if k != "auto_migrate"}
    engine = create_engine(parsed, parse_options(parsed, options))
    try:
        yield engine, parsed
    finally:
        engine.dispose()


@contextlib.contextmanager
def _mysql_lock(conn: Connection) -> Iterator[None]:
    if conn.dialect.name not in MYSQL:
        yield
        return
    got = conn.execute(
        sa.text("SELECT GET_LOCK(:name, :timeout)"),
        {"name": _MYSQL_LOCK, "timeout": _LOCK_TIMEOUT_S},
    ).scalar()
    conn.commit()
    if got != 1:
        raise BackendUnavailable("timed out waiting for another process's schema migration")
    try:
        yield
    finally:
        conn.execute(sa.text("SELECT RELEASE_LOCK(:name)"), {"name": _MYSQL_LOCK})
        conn.commit()


def _call(url: StoreURL, fn: Callable[[], T], action: str) -> T:
    """Run ``fn`` with retries; driver errors come out as praisondb errors, redacted."""

    def attempt() -> T:
        try:
            return fn()
        except PraisonDBError:
            raise
        except sa.exc.SQLAlchemyError as exc:
            translated = translate(exc, url)
            if translated is None:
                raise
            raise translated from exc

    return Retry().call(attempt, transient=is_retryable, url=url.redacted, action=action)
