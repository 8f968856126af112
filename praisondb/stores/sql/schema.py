"""The SQL schema as SQLAlchemy Core tables: what the store queries and what Alembic compares.

Tables are created only by the migrations in ``migrations/versions``; ``praisondb.stores.sql.migrate``
checks that the migrated database and these definitions agree. Every query the store
makes has an index here. Table names carry a ``praisondb_`` prefix so the schema can live
beside an application's own tables (and its own ``alembic_version``).
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from ...validation import MAX_SCOPE_LENGTH
from .types import FreeText, SearchText, UTCTimestamp, id_type, json_type, table_options

PREFIX = "praisondb_"
VERSION_TABLE = "praisondb_alembic_version"
MEMORY_SCOPE_LENGTH = 16
"""A memory's scope is ``user``, ``agent`` or ``app``: short, so the indexes stay small."""
FLOOR_LAG = timedelta(minutes=1)
"""How far ``sessions.updated_floor`` may trail ``updated_at`` (see the sessions table)."""

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

sessions = sa.Table(
    "praisondb_sessions",
    metadata,
    sa.Column("id", id_type(), primary_key=True),
    sa.Column("user_id", id_type(), nullable=True),
    sa.Column("agent", id_type(), nullable=True),
    sa.Column("title", FreeText(), nullable=True),
    sa.Column("metadata", json_type(), nullable=False),
    sa.Column("parent_id", id_type(), nullable=True),
    sa.Column("forked_at_seq", sa.BigInteger(), nullable=True),
    sa.Column("created_at", UTCTimestamp(), nullable=False),
    sa.Column("updated_at", UTCTimestamp(), nullable=False),
    sa.Column("message_count", sa.BigInteger(), nullable=False),
    sa.Column("last_seq", sa.BigInteger(), nullable=False),
    # ``updated_at`` is exact and unindexed, so an append rewrites no index entry of the
    # sessions row (no index page on SQLite, a HOT update on PostgreSQL, no secondary index
    # write on InnoDB). ``updated_floor`` is the indexed copy that filters on updated_at
    # use: it never exceeds updated_at and trails it by at most FLOOR_LAG, so an append
    # rewrites it at most once a FLOOR_LAG per session; every other write sets it equal.
    sa.Column("updated_floor", UTCTimestamp(), nullable=False),
    sa.Index(None, "user_id", "created_at", "id"),
    sa.Index(None, "agent", "created_at", "id"),
    sa.Index(None, "parent_id", "created_at", "id"),
    sa.Index(None, "created_at", "id"),
    sa.Index(None, "updated_floor"),
    **table_options(),
)

messages = sa.Table(
    "praisondb_messages",
    metadata,
    sa.Column(
        "session_id",
        id_type(),
        sa.ForeignKey(sessions.c.id, ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
    sa.Column("id", id_type(), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    # 0: ``content`` is the text itself; 1: ``content`` is a JSON list of content blocks.
    sa.Column("content_kind", sa.SmallInteger(), nullable=False),
    sa.Column("content", FreeText(), nullable=False),
    sa.Column("metadata", json_type(), nullable=False),
    sa.Column("run_id", id_type(), nullable=True),
    sa.Column("created_at", UTCTimestamp(), nullable=False),
    sa.UniqueConstraint("session_id", "id"),
    **table_options(),
)

runs = sa.Table(
    "praisondb_runs",
    metadata,
    sa.Column("id", id_type(), primary_key=True),
    sa.Column("session_id", id_type(), nullable=False),
    sa.Column("model", FreeText(), nullable=True),
    sa.Column("status", FreeText(), nullable=False),
    sa.Column("input_tokens", sa.BigInteger(), nullable=False),
    sa.Column("output_tokens", sa.BigInteger(), nullable=False),
    sa.Column("started_at", UTCTimestamp(), nullable=False),
    sa.Column("ended_at", UTCTimestamp(), nullable=True),
    sa.Column("error", FreeText(), nullable=True),
    sa.Column("metadata", json_type(), nullable=False),
    sa.Index(None, "session_id", "started_at", "id"),
    **table_options(),
)

spans = sa.Table(
    "praisondb_spans",
    metadata,
    sa.Column("id", id_type(), primary_key=True),
    sa.Column("trace_id", id_type(), nullable=False),
    sa.Column("parent_id", id_type(), nullable=True),
    sa.Column("session_id", id_type(), nullable=True),
    sa.Column("user_id", id_type(), nullable=True),
    sa.Column("name", FreeText(), nullable=False),
    sa.Column("status", FreeText(), nullable=False),
    sa.Column("attributes", json_type(), nullable=False),
    sa.Column("started_at", UTCTimestamp(), nullable=False),
    sa.Column("ended_at", UTCTimestamp(), nullable=True),
    sa.Index(None, "trace_id", "started_at", "id"),
    sa.Index(None, "session_id", "started_at", "id"),
    sa.Index(None, "user_id", "started_at", "id"),
    **table_options(),
)

checkpoints = sa.Table(
    "praisondb_checkpoints",
    metadata,
    sa.Column("id", id_type(), primary_key=True),
    sa.Column("session_id", id_type(), nullable=False),
    sa.Column("seq", sa.BigInteger(), nullable=False),
    sa.Column("state", json_type(), nullable=False),
    sa.Column("label", FreeText(), nullable=True),
    sa.Column("created_at", UTCTimestamp(), nullable=False),
    sa.Index(None, "session_id", "created_at", "id"),
    **table_options(),
)

state = sa.Table(
    "praisondb_state",
    metadata,
    sa.Column("scope", id_type(MAX_SCOPE_LENGTH), primary_key=True),
    sa.Column("key", id_type(), primary_key=True),
    sa.Column("value", json_type(), nullable=False),
    sa.Column("version", sa.BigInteger(), nullable=False),
    sa.Column("expires_at", UTCTimestamp(), nullable=True),
    sa.Column("updated_at", UTCTimestamp(), nullable=False),
    # who wrote the entry last (see StateStore.set_entry): tells a retry its own write
    sa.Column("write_token", id_type(), nullable=True),
    sa.Index(None, "expires_at"),
    **table_options(),
)

memories = sa.Table(
    "praisondb_memories",
    metadata,
    # ``num`` is a stable integer key for the full-text index: SQLite's FTS5 external
    # content table is keyed by it (an implicit rowid would change on VACUUM).
    sa.Column(
        "num",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("id", id_type(), nullable=False),
    sa.Column("scope", id_type(MEMORY_SCOPE_LENGTH), nullable=False),
    sa.Column("owner", id_type(), nullable=False),
    sa.Column("text", SearchText(), nullable=False),
    sa.Column("importance", sa.Double(), nullable=False),
    sa.Column("relevance", sa.Double(), nullable=False),
    sa.Column("quality", sa.Double(), nullable=False),
    sa.Column("metadata", json_type(), nullable=False),
    sa.Column("embedding", json_type(), nullable=True),
    sa.Column("created_at", UTCTimestamp(), nullable=False),
    sa.UniqueConstraint("id"),
    # listing, newest first; and eviction, lowest quality then oldest first
    sa.Index(None, "scope", "owner", "created_at", "id"),
    sa.Index(None, "scope", "owner", "quality", "created_at", "id"),
    **table_options(),
)
"""Full-text search lives outside these definitions, made by migration 0004 per dialect
(see :mod:`.fulltext`): SQLite's FTS5 table, PostgreSQL's tsvector column and GIN index,
MySQL/MariaDB's FULLTEXT index; :func:`include_name` keeps them out of comparisons."""

memory_scopes = sa.Table(
    "praisondb_memory_scopes",
    metadata,
    # One row per (scope, owner): adding a memory locks it, so a scope's writers take
    # turns and eviction sees an exact ``count`` (kept by every write of memories).
    sa.Column("scope", id_type(MEMORY_SCOPE_LENGTH), primary_key=True),
    sa.Column("owner", id_type(), primary_key=True),
    sa.Column("count", sa.BigInteger(), nullable=False),
    **table_options(),
)

TABLES = (sessions, messages, runs, spans, checkpoints, state, memories, memory_scopes)


FULLTEXT_NAMES = frozenset(
    {
        "praisondb_memories_fts",
        "search_vector",
        "ix_praisondb_memories_search",
        "ft_praisondb_memories_text",
    }
)
"""What migration 0004 makes for full-text search beyond these tables (see :mod:`.fulltext`)."""


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic filter: only praisondb's tables; an application's own tables are not ours;
    the full-text structures are dialect-specific and checked by the tests instead."""
    if name is not None and (name in FULLTEXT_NAMES or name.startswith("praisondb_memories_fts")):
        return False
    if type_ == "table":
        return bool(name) and str(name).startswith(PREFIX)
    return True
