"""serving: deployments on the engine, API tokens, richer inference logs

``model_deployments`` gains the engine and adapter name it is served under (unique: an
updated deployment gets a new name), its serving settings, an error and ``deleted_at``
(deleting a deployment keeps its row, so its logs and model version stay). ``inference_logs``
gains time to first token and an error code. ``api_tokens`` holds the HTTP API's bearer
tokens, hashed.

Every change adds nullable columns, indexes or a new table, so SQLite needs no rebuild.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.add_column("model_deployments", sa.Column("engine", sa.Text(), nullable=True))
    op.add_column("model_deployments",
                  sa.Column("adapter_name", sa.String(length=128), nullable=True))
    op.add_column("model_deployments", sa.Column("settings", JSON, nullable=True))
    op.add_column("model_deployments", sa.Column("error", sa.Text(), nullable=True))
    op.add_column("model_deployments",
                  sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("uq_model_deployments_adapter_name", "model_deployments",
                    ["adapter_name"], unique=True)
    op.create_index("ix_model_deployments_status", "model_deployments", ["status"])
    op.add_column("inference_logs", sa.Column("ttft_ms", sa.Float(), nullable=True))
    op.add_column("inference_logs", sa.Column("error", sa.String(length=200), nullable=True))
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_api_tokens_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_api_tokens_user_id", table_name="api_tokens")
    op.drop_table("api_tokens")
    op.drop_index("ix_model_deployments_status", table_name="model_deployments")
    op.drop_index("uq_model_deployments_adapter_name", table_name="model_deployments")
    # Plain DROP COLUMN (SQLite 3.35+): a batch rebuild would cascade (see 0002).
    for table, column in (("inference_logs", "error"), ("inference_logs", "ttft_ms"),
                          ("model_deployments", "deleted_at"), ("model_deployments", "error"),
                          ("model_deployments", "settings"), ("model_deployments", "engine"),
                          ("model_deployments", "adapter_name")):
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
