"""model version promotion

A user's *current* model version is the one promoted last (``promoted_at``); a version is
promoted when it beats the current one on the same held-out questions, or by hand.
``promotion_note`` says why a version was promoted, or why it was not.

Existing users keep the model they were using: each user's newest version (what "latest"
meant before this revision) is marked promoted, with a note saying so.

Both columns are nullable additions, so SQLite adds them in place (no table rebuild);
dropping them on downgrade needs SQLite 3.35 or newer.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BACKFILL_NOTE = "migration 0003: the newest version when promotion was introduced"


def upgrade() -> None:
    op.add_column("model_versions",
                  sa.Column("promoted_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("model_versions", sa.Column("promotion_note", sa.Text(), nullable=True))
    op.create_index("ix_model_versions_user_promoted", "model_versions",
                    ["user_id", "promoted_at"], unique=False)
    op.execute(sa.text(
        "UPDATE model_versions SET promoted_at = created_at, promotion_note = :note "
        "WHERE version = (SELECT max(newest.version) FROM model_versions AS newest "
        "WHERE newest.user_id = model_versions.user_id)").bindparams(note=BACKFILL_NOTE))


def downgrade() -> None:
    op.drop_index("ix_model_versions_user_promoted", table_name="model_versions")
    # ALTER TABLE ... DROP COLUMN directly: alembic would rebuild the table on SQLite, and a
    # rebuild of a referenced table cascades (see 0002).
    op.execute("ALTER TABLE model_versions DROP COLUMN promotion_note")
    op.execute("ALTER TABLE model_versions DROP COLUMN promoted_at")
