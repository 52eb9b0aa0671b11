"""operations: admin training queues; workflows remember their queue, priority and sizes

``training_queues`` holds each admin queue (its limit and priority weights; Dagster's run
queue enforces them through run tags). ``training_workflows`` gains the queue and priority it
was launched with, the data size and hardware profile its estimate was drawn from, and an
error. Only new tables, nullable columns and indexes: SQLite needs no rebuild.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
WORKFLOW_COLUMNS = (("queue_name", sa.String(length=64)), ("priority", sa.String(length=16)),
                    ("data_examples", sa.Integer()), ("hardware_profile", sa.String(length=32)),
                    ("error", sa.Text()))


def upgrade() -> None:
    op.create_table(
        "training_queues",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("max_concurrent_jobs", sa.Integer(), nullable=False),
        sa.Column("priority_weights", JSON, nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_training_queues")),
        sa.UniqueConstraint("name", name=op.f("uq_training_queues_name")),
    )
    for name, kind in WORKFLOW_COLUMNS:
        op.add_column("training_workflows", sa.Column(name, kind, nullable=True))
    op.create_index("ix_training_workflows_status", "training_workflows", ["status"])


def downgrade() -> None:
    op.drop_index("ix_training_workflows_status", table_name="training_workflows")
    # Plain DROP COLUMN (SQLite 3.35+): a batch rebuild would cascade (see 0002).
    for name, _ in reversed(WORKFLOW_COLUMNS):
        op.execute(f"ALTER TABLE training_workflows DROP COLUMN {name}")
    op.drop_table("training_queues")
