"""Sessions: an indexed ``updated_floor`` instead of the index on ``updated_at``.

An append sets the session's exact ``updated_at``; while that column was indexed, every
append also rewrote an index entry (an extra page per commit on SQLite, a non-HOT update
with an entry in every index on PostgreSQL, a secondary-index write on InnoDB).
``updated_floor`` trails ``updated_at`` by at most a minute and is what the filters on
updated_at use (see praisondb.stores.sql.schema); existing rows start equal.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out here, as in 0001, so this revision never changes when the package does.
MYSQL_NAMES = ("mysql", "mariadb")
TIMESTAMP = (
    sa.DateTime(timezone=True)
    .with_variant(sa.BigInteger(), "sqlite")
    .with_variant(mysql.DATETIME(fsp=6), *MYSQL_NAMES)
)
TABLE = "praisondb_sessions"
COPY = sa.text("UPDATE praisondb_sessions SET updated_floor = updated_at")


def upgrade() -> None:
    column = "updated_floor"
    if op.get_context().dialect.name == "sqlite":
        # SQLite adds a NOT NULL column only with a default; batch mode (a table copy)
        # could drop it but cannot run offline (--sql). Every write sets the column.
        op.add_column(TABLE, sa.Column(column, TIMESTAMP, nullable=False, server_default="0"))
        op.execute(COPY)
    else:
        op.add_column(TABLE, sa.Column(column, TIMESTAMP, nullable=True))
        op.execute(COPY)
        op.alter_column(TABLE, column, existing_type=TIMESTAMP, nullable=False)
    op.drop_index("ix_praisondb_sessions_updated_at", table_name=TABLE)
    op.create_index("ix_praisondb_sessions_updated_floor", TABLE, [column])


def downgrade() -> None:
    op.drop_index("ix_praisondb_sessions_updated_floor", table_name=TABLE)
    with op.batch_alter_table(TABLE) as batch:
        batch.drop_column("updated_floor")
    op.create_index("ix_praisondb_sessions_updated_at", TABLE, ["updated_at"])
