"""Initial schema: sessions, messages, runs, spans, checkpoints and state.

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql, postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Types are spelled out here (not imported from praisondb.stores) so this revision never
# changes when the package does. ``praisondb.stores.sql.migrate.check`` proves they still match.
MYSQL_NAMES = ("mysql", "mariadb")
ID = sa.String(255).with_variant(sa.String(255, collation="C"), "postgresql")
SCOPE = sa.String(320).with_variant(sa.String(320, collation="C"), "postgresql")
TEXT = sa.Text().with_variant(mysql.LONGTEXT(), *MYSQL_NAMES)
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


def upgrade() -> None:
    op.create_table(
        "praisondb_sessions",
        sa.Column("id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=True),
        sa.Column("agent", ID, nullable=True),
        sa.Column("title", TEXT, nullable=True),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("parent_id", ID, nullable=True),
        sa.Column("forked_at_seq", sa.BigInteger(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("message_count", sa.BigInteger(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_praisondb_sessions"),
        **TABLE_OPTIONS,
    )
    for columns in (
        ("user_id", "created_at", "id"),
        ("agent", "created_at", "id"),
        ("parent_id", "created_at", "id"),
        ("created_at", "id"),
        ("updated_at",),
    ):
        op.create_index(
            "ix_praisondb_sessions_" + "_".join(columns), "praisondb_sessions", list(columns)
        )

    op.create_table(
        "praisondb_messages",
        sa.Column("session_id", ID, nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("id", ID, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("content_kind", sa.SmallInteger(), nullable=False),
        sa.Column("content", TEXT, nullable=False),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("run_id", ID, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["praisondb_sessions.id"],
            name="fk_praisondb_messages_session_id_praisondb_sessions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", "seq", name="pk_praisondb_messages"),
        sa.UniqueConstraint("session_id", "id", name="uq_praisondb_messages_session_id_id"),
        **TABLE_OPTIONS,
    )

    op.create_table(
        "praisondb_runs",
        sa.Column("id", ID, nullable=False),
        sa.Column("session_id", ID, nullable=False),
        sa.Column("model", TEXT, nullable=True),
        sa.Column("status", TEXT, nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("ended_at", TIMESTAMP, nullable=True),
        sa.Column("error", TEXT, nullable=True),
        sa.Column("metadata", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_praisondb_runs"),
        **TABLE_OPTIONS,
    )
    op.create_index(
        "ix_praisondb_runs_session_id_started_at_id",
        "praisondb_runs",
        ["session_id", "started_at", "id"],
    )

    op.create_table(
        "praisondb_spans",
        sa.Column("id", ID, nullable=False),
        sa.Column("trace_id", ID, nullable=False),
        sa.Column("parent_id", ID, nullable=True),
        sa.Column("session_id", ID, nullable=True),
        sa.Column("user_id", ID, nullable=True),
        sa.Column("name", TEXT, nullable=False),
        sa.Column("status", TEXT, nullable=False),
        sa.Column("attributes", JSON, nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("ended_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_praisondb_spans"),
        **TABLE_OPTIONS,
    )
    for column in ("trace_id", "session_id", "user_id"):
        op.create_index(
            f"ix_praisondb_spans_{column}_started_at_id",
            "praisondb_spans",
            [column, "started_at", "id"],
        )

    op.create_table(
        "praisondb_checkpoints",
        sa.Column("id", ID, nullable=False),
        sa.Column("session_id", ID, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("state", JSON, nullable=False),
        sa.Column("label", TEXT, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_praisondb_checkpoints"),
        **TABLE_OPTIONS,
    )
    op.create_index(
        "ix_praisondb_checkpoints_session_id_created_at_id",
        "praisondb_checkpoints",
        ["session_id", "created_at", "id"],
    )

    op.create_table(
        "praisondb_state",
        sa.Column("scope", SCOPE, nullable=False),
        sa.Column("key", ID, nullable=False),
        sa.Column("value", JSON, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=True),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("scope", "key", name="pk_praisondb_state"),
        **TABLE_OPTIONS,
    )
    op.create_index("ix_praisondb_state_expires_at", "praisondb_state", ["expires_at"])


def downgrade() -> None:
    for table in (
        "praisondb_state",
        "praisondb_checkpoints",
        "praisondb_spans",
        "praisondb_runs",
        "praisondb_messages",
        "praisondb_sessions",
    ):
        op.drop_table(table)
