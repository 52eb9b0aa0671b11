"""housekeeping: training runs and model versions remember when their files were archived

The housekeeping job removes the large files of old, unneeded runs and versions (checkpoints,
adapters) and keeps their rows: ``archived_at`` says when, so nothing points at files that
are gone without saying so. Nullable columns only: SQLite needs no rebuild.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("training_runs", "model_versions")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+): a batch rebuild would cascade (see 0002).
    for table in reversed(TABLES):
        op.execute(f"ALTER TABLE {table} DROP COLUMN archived_at")
