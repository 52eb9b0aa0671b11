"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("locale", sa.String(length=35), nullable=True),
        sa.Column("birth_year", sa.Integer(), nullable=True),
        sa.Column(
            "persona",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "extra",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("external_id", name=op.f("uq_users_external_id")),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_users_updated_at"), ["updated_at"], unique=False)

    op.create_table(
        "life_stories",
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("category", sa.String(length=128), nullable=True),
        sa.Column("era", sa.String(length=64), nullable=True),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("item_id", sa.String(length=128), nullable=False),
        sa.Column(
            "extra",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_life_stories_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_life_stories")),
        sa.UniqueConstraint("user_id", "item_id", name=op.f("uq_life_stories_user_id_item_id")),
    )
    with op.batch_alter_table("life_stories", schema=None) as batch_op:
        batch_op.create_index(
            "ix_life_stories_user_created", ["user_id", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_life_stories_user_updated", ["user_id", "updated_at"], unique=False
        )

    op.create_table(
        "milestone_messages",
        sa.Column("recipient", sa.Text(), nullable=True),
        sa.Column("occasion", sa.Text(), nullable=True),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("deliver_on", sa.Date(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("item_id", sa.String(length=128), nullable=False),
        sa.Column(
            "extra",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_milestone_messages_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_milestone_messages")),
        sa.UniqueConstraint(
            "user_id", "item_id", name=op.f("uq_milestone_messages_user_id_item_id")
        ),
    )
    with op.batch_alter_table("milestone_messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_milestone_messages_user_created", ["user_id", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_milestone_messages_user_updated", ["user_id", "updated_at"], unique=False
        )

    op.create_table(
        "responses",
        sa.Column("category", sa.String(length=128), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("emotional_tone", sa.String(length=64), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("item_id", sa.String(length=128), nullable=False),
        sa.Column(
            "extra",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_responses_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_responses")),
        sa.UniqueConstraint("user_id", "item_id", name=op.f("uq_responses_user_id_item_id")),
    )
    with op.batch_alter_table("responses", schema=None) as batch_op:
        batch_op.create_index("ix_responses_user_created", ["user_id", "created_at"], unique=False)
        batch_op.create_index("ix_responses_user_updated", ["user_id", "updated_at"], unique=False)

    op.create_table(
        "training_datasets",
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column(
            "config",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("total_examples", sa.Integer(), nullable=False),
        sa.Column("total_words", sa.Integer(), nullable=False),
        sa.Column(
            "sources",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "skipped",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "redactions",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "quality_metrics",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "readiness",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("ready", sa.Boolean(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("dagster_run_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_training_datasets_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_training_datasets")),
    )
    with op.batch_alter_table("training_datasets", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_training_datasets_dagster_run_id"), ["dagster_run_id"], unique=False
        )
        batch_op.create_index(
            "ix_training_datasets_user_created", ["user_id", "created_at"], unique=False
        )

    op.create_table(
        "training_workflows",
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("include_voice_integration", sa.Boolean(), nullable=False),
        sa.Column("auto_deployment", sa.Boolean(), nullable=False),
        sa.Column(
            "stages",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("dagster_run_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_training_workflows_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_training_workflows")),
    )
    with op.batch_alter_table("training_workflows", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_training_workflows_dagster_run_id"), ["dagster_run_id"], unique=False
        )
        batch_op.create_index(
            "ix_training_workflows_user_created", ["user_id", "created_at"], unique=False
        )

    op.create_table(
        "voice_profiles",
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column(
            "profile",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "quality",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("dagster_run_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_voice_profiles_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_voice_profiles")),
    )
    with op.batch_alter_table("voice_profiles", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_voice_profiles_dagster_run_id"), ["dagster_run_id"], unique=False
        )
        batch_op.create_index(
            "ix_voice_profiles_user_created", ["user_id", "created_at"], unique=False
        )

    op.create_table(
        "voice_recordings",
        sa.Column("passage_id", sa.String(length=128), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("file_path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("original_name", sa.Text(), nullable=False),
        sa.Column("audio_format", sa.String(length=16), nullable=False),
        sa.Column("sample_rate", sa.Integer(), nullable=False),
        sa.Column("channels", sa.Integer(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("item_id", sa.String(length=128), nullable=False),
        sa.Column(
            "extra",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_voice_recordings_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_voice_recordings")),
        sa.UniqueConstraint("user_id", "item_id", name=op.f("uq_voice_recordings_user_id_item_id")),
    )
    with op.batch_alter_table("voice_recordings", schema=None) as batch_op:
        batch_op.create_index(
            "ix_voice_recordings_user_created", ["user_id", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_voice_recordings_user_updated", ["user_id", "updated_at"], unique=False
        )

    op.create_table(
        "formatted_training_data",
        sa.Column("dataset_id", sa.Uuid(), nullable=False),
        sa.Column("format", sa.String(length=32), nullable=False),
        sa.Column("template_style", sa.String(length=64), nullable=False),
        sa.Column("include_system_prompts", sa.Boolean(), nullable=False),
        sa.Column("max_length", sa.Integer(), nullable=False),
        sa.Column("tokenizer", sa.Text(), nullable=False),
        sa.Column("train_path", sa.Text(), nullable=False),
        sa.Column("eval_path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("train_count", sa.Integer(), nullable=False),
        sa.Column("eval_count", sa.Integer(), nullable=False),
        sa.Column("truncated_count", sa.Integer(), nullable=False),
        sa.Column("dropped_count", sa.Integer(), nullable=False),
        sa.Column(
            "token_stats",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("dagster_run_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["training_datasets.id"],
            name=op.f("fk_formatted_training_data_dataset_id_training_datasets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_formatted_training_data_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_formatted_training_data")),
    )
    with op.batch_alter_table("formatted_training_data", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_formatted_training_data_dagster_run_id"),
            ["dagster_run_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_formatted_training_data_dataset_id"), ["dataset_id"], unique=False
        )
        batch_op.create_index(
            "ix_formatted_training_data_user_created", ["user_id", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_formatted_training_data_user_format", ["user_id", "format"], unique=False
        )

    op.create_table(
        "training_runs",
        sa.Column("dataset_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("base_model", sa.Text(), nullable=True),
        sa.Column(
            "config",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "hardware",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("checkpoint_path", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("dagster_run_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["training_datasets.id"],
            name=op.f("fk_training_runs_dataset_id_training_datasets"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_training_runs_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_training_runs")),
    )
    with op.batch_alter_table("training_runs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_training_runs_dagster_run_id"), ["dagster_run_id"], unique=False
        )
        batch_op.create_index("ix_training_runs_status", ["status"], unique=False)
        batch_op.create_index(
            "ix_training_runs_user_created", ["user_id", "created_at"], unique=False
        )

    op.create_table(
        "voice_llm_integrations",
        sa.Column("voice_profile_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column(
            "settings",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "stages",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("alignment_accuracy", sa.Float(), nullable=True),
        sa.Column("emotional_consistency", sa.Float(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("dagster_run_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_voice_llm_integrations_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["voice_profile_id"],
            ["voice_profiles.id"],
            name=op.f("fk_voice_llm_integrations_voice_profile_id_voice_profiles"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_voice_llm_integrations")),
    )
    with op.batch_alter_table("voice_llm_integrations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_voice_llm_integrations_dagster_run_id"), ["dagster_run_id"], unique=False
        )
        batch_op.create_index(
            "ix_voice_llm_integrations_user_created", ["user_id", "created_at"], unique=False
        )

    op.create_table(
        "model_versions",
        sa.Column("training_run_id", sa.Uuid(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("base_model", sa.Text(), nullable=False),
        sa.Column("adapter_path", sa.Text(), nullable=True),
        sa.Column("adapter_sha256", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column(
            "metrics",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("dagster_run_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["training_run_id"],
            ["training_runs.id"],
            name=op.f("fk_model_versions_training_run_id_training_runs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_model_versions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_versions")),
    )
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_model_versions_dagster_run_id"), ["dagster_run_id"], unique=False
        )
        batch_op.create_index(
            "ix_model_versions_user_created", ["user_id", "created_at"], unique=False
        )

    op.create_table(
        "training_metrics",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("training_run_id", sa.Uuid(), nullable=False),
        sa.Column("dagster_run_id", sa.String(length=64), nullable=True),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.Float(), nullable=True),
        sa.Column("loss", sa.Float(), nullable=True),
        sa.Column("eval_loss", sa.Float(), nullable=True),
        sa.Column("learning_rate", sa.Float(), nullable=True),
        sa.Column("grad_norm", sa.Float(), nullable=True),
        sa.Column("tokens_per_second", sa.Float(), nullable=True),
        sa.Column("percent_complete", sa.Float(), nullable=True),
        sa.Column("eta_seconds", sa.Float(), nullable=True),
        sa.Column("gpu_utilization", sa.Float(), nullable=True),
        sa.Column("vram_used_mb", sa.Float(), nullable=True),
        sa.Column("gpu_temperature_c", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["training_run_id"],
            ["training_runs.id"],
            name=op.f("fk_training_metrics_training_run_id_training_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_training_metrics")),
    )
    with op.batch_alter_table("training_metrics", schema=None) as batch_op:
        batch_op.create_index(
            "ix_training_metrics_run_step", ["training_run_id", "step"], unique=False
        )

    op.create_table(
        "model_deployments",
        sa.Column("model_version_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("inference_type", sa.String(length=32), nullable=False),
        sa.Column(
            "optimizations",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("dagster_run_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            name=op.f("fk_model_deployments_model_version_id_model_versions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_model_deployments_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_deployments")),
    )
    with op.batch_alter_table("model_deployments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_model_deployments_dagster_run_id"), ["dagster_run_id"], unique=False
        )
        batch_op.create_index(
            "ix_model_deployments_user_created", ["user_id", "created_at"], unique=False
        )

    op.create_table(
        "inference_logs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("deployment_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=True),
        sa.Column("completion_tokens", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("cached", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["model_deployments.id"],
            name=op.f("fk_inference_logs_deployment_id_model_deployments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_inference_logs_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inference_logs")),
    )
    with op.batch_alter_table("inference_logs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_inference_logs_deployment_created", ["deployment_id", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_inference_logs_user_created", ["user_id", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("inference_logs", schema=None) as batch_op:
        batch_op.drop_index("ix_inference_logs_user_created")
        batch_op.drop_index("ix_inference_logs_deployment_created")

    op.drop_table("inference_logs")
    with op.batch_alter_table("model_deployments", schema=None) as batch_op:
        batch_op.drop_index("ix_model_deployments_user_created")
        batch_op.drop_index(batch_op.f("ix_model_deployments_dagster_run_id"))

    op.drop_table("model_deployments")
    with op.batch_alter_table("training_metrics", schema=None) as batch_op:
        batch_op.drop_index("ix_training_metrics_run_step")

    op.drop_table("training_metrics")
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.drop_index("ix_model_versions_user_created")
        batch_op.drop_index(batch_op.f("ix_model_versions_dagster_run_id"))

    op.drop_table("model_versions")
    with op.batch_alter_table("voice_llm_integrations", schema=None) as batch_op:
        batch_op.drop_index("ix_voice_llm_integrations_user_created")
        batch_op.drop_index(batch_op.f("ix_voice_llm_integrations_dagster_run_id"))

    op.drop_table("voice_llm_integrations")
    with op.batch_alter_table("training_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_training_runs_user_created")
        batch_op.drop_index("ix_training_runs_status")
        batch_op.drop_index(batch_op.f("ix_training_runs_dagster_run_id"))

    op.drop_table("training_runs")
    with op.batch_alter_table("formatted_training_data", schema=None) as batch_op:
        batch_op.drop_index("ix_formatted_training_data_user_format")
        batch_op.drop_index("ix_formatted_training_data_user_created")
        batch_op.drop_index(batch_op.f("ix_formatted_training_data_dataset_id"))
        batch_op.drop_index(batch_op.f("ix_formatted_training_data_dagster_run_id"))

    op.drop_table("formatted_training_data")
    with op.batch_alter_table("voice_recordings", schema=None) as batch_op:
        batch_op.drop_index("ix_voice_recordings_user_updated")
        batch_op.drop_index("ix_voice_recordings_user_created")

    op.drop_table("voice_recordings")
    with op.batch_alter_table("voice_profiles", schema=None) as batch_op:
        batch_op.drop_index("ix_voice_profiles_user_created")
        batch_op.drop_index(batch_op.f("ix_voice_profiles_dagster_run_id"))

    op.drop_table("voice_profiles")
    with op.batch_alter_table("training_workflows", schema=None) as batch_op:
        batch_op.drop_index("ix_training_workflows_user_created")
        batch_op.drop_index(batch_op.f("ix_training_workflows_dagster_run_id"))

    op.drop_table("training_workflows")
    with op.batch_alter_table("training_datasets", schema=None) as batch_op:
        batch_op.drop_index("ix_training_datasets_user_created")
        batch_op.drop_index(batch_op.f("ix_training_datasets_dagster_run_id"))

    op.drop_table("training_datasets")
    with op.batch_alter_table("responses", schema=None) as batch_op:
        batch_op.drop_index("ix_responses_user_updated")
        batch_op.drop_index("ix_responses_user_created")

    op.drop_table("responses")
    with op.batch_alter_table("milestone_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_milestone_messages_user_updated")
        batch_op.drop_index("ix_milestone_messages_user_created")

    op.drop_table("milestone_messages")
    with op.batch_alter_table("life_stories", schema=None) as batch_op:
        batch_op.drop_index("ix_life_stories_user_updated")
        batch_op.drop_index("ix_life_stories_user_created")

    op.drop_table("life_stories")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_updated_at"))

    op.drop_table("users")
