"""State write tokens: a compare-and-set re-sent after a lost reply finds its own write.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out here, as in 0001, so this revision never changes when the package does.
ID = sa.String(255).with_variant(sa.String(255, collation="C"), "postgresql")


def upgrade() -> None:
    # Nullable, no default: instant on every server (no table rewrite); old rows have none.
    with op.batch_alter_table("praisondb_state") as batch:
        batch.add_column(sa.Column("write_token", ID, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("praisondb_state") as batch:
        batch.drop_column("write_token")
