"""Long-term memories: the memories table, each engine's full-text index, and one row per
(scope, owner) that a scope's writers lock in turn.

Full text, per dialect (praisondb.stores.sql.fulltext queries it):
- SQLite: an FTS5 external-content table on ``text`` (tokenizer ``unicode61``) keyed by
  ``num``, kept in step by three triggers; ``bm25()`` ranks.
- PostgreSQL: a stored generated ``tsvector`` column (the ``simple`` configuration: no
  stemming and no stopwords, the same tokens every other backend ranks by) with a GIN
  index; ``ts_rank_cd`` ranks.
- MySQL/MariaDB: an InnoDB FULLTEXT index on ``text`` (in a case-insensitive collation);
  ``MATCH ... AGAINST`` in natural language mode ranks.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql, postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out here, as in 0001, so this revision never changes when the package does.
MYSQL_NAMES = ("mysql", "mariadb")
ID = sa.String(255).with_variant(sa.String(255, collation="C"), "postgresql")
SCOPE = sa.String(16).with_variant(sa.String(16, collation="C"), "postgresql")
NUM = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TEXT = sa.Text().with_variant(mysql.LONGTEXT(collation="utf8mb4_unicode_ci"), *MYSQL_NAMES)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = (
    sa.DateTime(timezone=True)
    .with_variant(sa.BigInteger(), "sqlite")
    .with_variant(mysql.DATETIME(fsp=6), *MYSQL_NAMES)
)
TABLE_OPTIONS: dict[str, str] = {}
for _prefix in MYSQL_NAMES:
    TABLE_OPTIONS[f"{_prefix}_engine"] = "InnoDB"
    TABLE_OPTIONS[f"{_prefix}_charset"] = "utf8mb4"
    TABLE_OPTIONS[f"{_prefix}_collate"] = "utf8mb4_nopad_bin"

TABLE = "praisondb_memories"
# Literal DDL (no names interpolated): FTS = praisondb_memories_fts, TABLE = praisondb_memories.
SQLITE_FTS = [
    "CREATE VIRTUAL TABLE praisondb_memories_fts USING fts5(text, "
    "content='praisondb_memories', content_rowid='num', tokenize='unicode61')",
    "CREATE TRIGGER praisondb_memories_fts_insert AFTER INSERT ON praisondb_memories BEGIN "
    "INSERT INTO praisondb_memories_fts(rowid, text) VALUES (new.num, new.text); END",
    "CREATE TRIGGER praisondb_memories_fts_delete AFTER DELETE ON praisondb_memories BEGIN "
    "INSERT INTO praisondb_memories_fts(praisondb_memories_fts, rowid, text) "
    "VALUES ('delete', old.num, old.text); END",
    "CREATE TRIGGER praisondb_memories_fts_update AFTER UPDATE OF text ON praisondb_memories "
    "BEGIN INSERT INTO praisondb_memories_fts(praisondb_memories_fts, rowid, text) "
    "VALUES ('delete', old.num, old.text); "
    "INSERT INTO praisondb_memories_fts(rowid, text) VALUES (new.num, new.text); END",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS praisondb_memories_fts_insert",
    "DROP TRIGGER IF EXISTS praisondb_memories_fts_delete",
    "DROP TRIGGER IF EXISTS praisondb_memories_fts_update",
    "DROP TABLE IF EXISTS praisondb_memories_fts",
]
POSTGRES_FTS = [
    "ALTER TABLE praisondb_memories ADD COLUMN search_vector tsvector "
    "GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, text)) STORED",
    "CREATE INDEX ix_praisondb_memories_search ON praisondb_memories USING gin (search_vector)",
]


def _require_fts5() -> None:
    """FTS5 is compiled into the SQLite of every mainstream Python build; say so if not."""
    bind = op.get_bind()
    if bind is None:  # offline (--sql): nothing to ask
        return
    options = {row[0] for row in bind.exec_driver_sql("PRAGMA compile_options")}
    if "ENABLE_FTS5" not in options:
        from praisondb.errors import ConfigError

        raise ConfigError(
            "this Python's SQLite was built without FTS5, which memory search needs; "
            "use a Python whose sqlite3 has it (python.org, Debian and conda builds do) "
            "or install pysqlite3-binary"
        )


def upgrade() -> None:
    dialect = op.get_context().dialect.name
    if dialect == "sqlite" and not op.get_context().as_sql:
        _require_fts5()
    op.create_table(
        TABLE,
        sa.Column("num", NUM, autoincrement=True, nullable=False),
        sa.Column("id", ID, nullable=False),
        sa.Column("scope", SCOPE, nullable=False),
        sa.Column("owner", ID, nullable=False),
        sa.Column("text", TEXT, nullable=False),
        sa.Column("importance", sa.Double(), nullable=False),
        sa.Column("relevance", sa.Double(), nullable=False),
        sa.Column("quality", sa.Double(), nullable=False),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("embedding", JSON, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("num", name="pk_praisondb_memories"),
        sa.UniqueConstraint("id", name="uq_praisondb_memories_id"),
        **TABLE_OPTIONS,
    )
    for columns in (
        ("scope", "owner", "created_at", "id"),
        ("scope", "owner", "quality", "created_at", "id"),
    ):
        op.create_index("ix_praisondb_memories_" + "_".join(columns), TABLE, list(columns))
    op.create_table(
        "praisondb_memory_scopes",
        sa.Column("scope", SCOPE, nullable=False),
        sa.Column("owner", ID, nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "owner", name="pk_praisondb_memory_scopes"),
        **TABLE_OPTIONS,
    )
    if dialect == "sqlite":
        for statement in SQLITE_FTS:
            op.execute(statement)
    elif dialect == "postgresql":
        for statement in POSTGRES_FTS:
            op.execute(statement)
    else:
        op.create_index("ft_praisondb_memories_text", TABLE, ["text"], mysql_prefix="FULLTEXT")


def downgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        for statement in SQLITE_DROP:
            op.execute(statement)
    op.drop_table("praisondb_memory_scopes")
    op.drop_table(TABLE)
