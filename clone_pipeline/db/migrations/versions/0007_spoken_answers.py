"""spoken answers: a voice recording may name the response or life story it tells

``response_id`` and ``story_id`` hold the export id of the item whose words the recording
speaks (its transcript is ``text``), so a reply that quotes the answer can offer her own
voice telling it. Both null for free speech and read passages, which every recording before
this was. Nullable columns only: SQLite needs no rebuild.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("response_id", "story_id")


def upgrade() -> None:
    for column in COLUMNS:
        op.add_column("voice_recordings", sa.Column(column, sa.String(128), nullable=True))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+): a batch rebuild would cascade (see 0002).
    for column in reversed(COLUMNS):
        op.execute(f"ALTER TABLE voice_recordings DROP COLUMN {column}")
