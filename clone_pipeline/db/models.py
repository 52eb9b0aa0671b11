"""SQLAlchemy 2 models for the domain tables.

Source tables hold a person's material as imported (text after Unicode NFC only). Pipeline
tables record what each stage produced; every pipeline row carries the Dagster run id that
made it. Schema changes go through Alembic migrations (``db/migrations``), never ``create_all``
on a live database.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from clone_pipeline.db.statuses import (
    DeploymentStatus,
    InferenceStatus,
    ModelVersionStatus,
    TrainingRunStatus,
    VoiceIntegrationStatus,
    VoiceProfileStatus,
    WorkflowStatus,
)

JsonType = JSON().with_variant(JSONB(), "postgresql")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JsonType, list[Any]: JsonType}


def _pk() -> Mapped[uuid.UUID]:
    return mapped_column(Uuid, primary_key=True, default=uuid.uuid4)


def _created() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)


def _user_fk() -> Mapped[uuid.UUID]:
    return mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)


def _status(default: StrEnum) -> Mapped[str]:
    """A ``status`` column the database limits to *default*'s enum (``ck_<table>_status``)."""
    allowed = ", ".join(f"'{member.value}'" for member in type(default))
    return mapped_column(String(32), CheckConstraint(f"status IN ({allowed})", name="status"),
                         nullable=False, default=default)


# ---------------------------------------------------------------- source tables


class User(Base):
    __tablename__ = "users"
    id: Mapped[uuid.UUID] = _pk()
    external_id: Mapped[str] = mapped_column(String(128), unique=True, nullable=False)
    display_name: Mapped[str] = mapped_column(Text, nullable=False)
    locale: Mapped[str | None] = mapped_column(String(35))
    birth_year: Mapped[int | None] = mapped_column(Integer)
    persona: Mapped[dict[str, Any]] = mapped_column(default=dict)
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                 nullable=False, index=True)


class _SourceItem:
    """Columns every imported item shares: the export's own id and bookkeeping."""

    id: Mapped[uuid.UUID] = _pk()
    user_id: Mapped[uuid.UUID] = _user_fk()
    item_id: Mapped[str] = mapped_column(String(128), nullable=False)
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                 nullable=False)


def _item_table_args(table: str) -> tuple:
    """One row per (user, export id); the lookups the sensor and API do by time."""
    return (UniqueConstraint("user_id", "item_id"),
            Index(f"ix_{table}_user_created", "user_id", "created_at"),
            Index(f"ix_{table}_user_updated", "user_id", "updated_at"))


class Response(_SourceItem, Base):
    __tablename__ = "responses"
    category: Mapped[str] = mapped_column(String(128), nullable=False)
    question: Mapped[str] = mapped_column(Text, nullable=False)
    answer: Mapped[str] = mapped_column(Text, nullable=False)
    emotional_tone: Mapped[str | None] = mapped_column(String(64))
    __table_args__ = _item_table_args("responses")


class LifeStory(_SourceItem, Base):
    __tablename__ = "life_stories"
    title: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(String(128))
    era: Mapped[str | None] = mapped_column(String(64))
    content: Mapped[str] = mapped_column(Text, nullable=False)
    __table_args__ = _item_table_args("life_stories")


class MilestoneMessage(_SourceItem, Base):
    __tablename__ = "milestone_messages"
    recipient: Mapped[str | None] = mapped_column(Text)
    occasion: Mapped[str | None] = mapped_column(Text)
    content: Mapped[str] = mapped_column(Text, nullable=False)
    deliver_on: Mapped[date | None] = mapped_column(Date)
    __table_args__ = _item_table_args("milestone_messages")


class VoiceRecording(_SourceItem, Base):
    __tablename__ = "voice_recordings"
    passage_id: Mapped[str | None] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text, nullable=False)
    # The export id of the response or life story this recording tells (its transcript is
    # `text`); neither for free speech or a read passage. Ids, not foreign keys: items are
    # upserted and pruned by export id, and the importer checks the id is in the export.
    response_id: Mapped[str | None] = mapped_column(String(128))
    story_id: Mapped[str | None] = mapped_column(String(128))
    # Path relative to the data root; the file is content-addressed by sha256.
    file_path: Mapped[str] = mapped_column(Text, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    original_name: Mapped[str] = mapped_column(Text, nullable=False)
    audio_format: Mapped[str] = mapped_column(String(16), nullable=False)
    sample_rate: Mapped[int] = mapped_column(Integer, nullable=False)
    channels: Mapped[int] = mapped_column(Integer, nullable=False)
    duration_s: Mapped[float] = mapped_column(Float, nullable=False)
    size_bytes: Mapped[int] = mapped_column(Integer, nullable=False)
    recorded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = _item_table_args("voice_recordings")


SOURCE_MODELS = {
    "responses": Response,
    "life_stories": LifeStory,
    "milestone_messages": MilestoneMessage,
    "voice_recordings": VoiceRecording,
}


# ---------------------------------------------------------------- pipeline tables


class _PipelineRow:
    id: Mapped[uuid.UUID] = _pk()
    user_id: Mapped[uuid.UUID] = _user_fk()
    dagster_run_id: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = _created()


class TrainingDataset(_PipelineRow, Base):
    """One collection of a user's material: cleaned, redacted, deduplicated, assessed."""

    __tablename__ = "training_datasets"
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    path: Mapped[str] = mapped_column(Text, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    total_examples: Mapped[int] = mapped_column(Integer, nullable=False)
    total_words: Mapped[int] = mapped_column(Integer, nullable=False)
    sources: Mapped[dict[str, Any]] = mapped_column(default=dict)
    skipped: Mapped[dict[str, Any]] = mapped_column(default=dict)
    redactions: Mapped[dict[str, Any]] = mapped_column(default=dict)
    quality_metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    readiness: Mapped[dict[str, Any]] = mapped_column(default=dict)
    ready: Mapped[bool] = mapped_column(Boolean, nullable=False)
    __table_args__ = (Index("ix_training_datasets_user_created", "user_id", "created_at"),)


class FormattedTrainingData(_PipelineRow, Base):
    """One format's rendering of a dataset, split into train and held-out eval files."""

    __tablename__ = "formatted_training_data"
    dataset_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("training_datasets.id", ondelete="CASCADE"), nullable=False, index=True)
    format: Mapped[str] = mapped_column(String(32), nullable=False)
    template_style: Mapped[str] = mapped_column(String(64), nullable=False)
    include_system_prompts: Mapped[bool] = mapped_column(Boolean, nullable=False)
    max_length: Mapped[int] = mapped_column(Integer, nullable=False)
    tokenizer: Mapped[str] = mapped_column(Text, nullable=False)
    train_path: Mapped[str] = mapped_column(Text, nullable=False)
    eval_path: Mapped[str] = mapped_column(Text, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    train_count: Mapped[int] = mapped_column(Integer, nullable=False)
    eval_count: Mapped[int] = mapped_column(Integer, nullable=False)
    truncated_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    dropped_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    token_stats: Mapped[dict[str, Any]] = mapped_column(default=dict)
    __table_args__ = (
        Index("ix_formatted_training_data_user_created", "user_id", "created_at"),
        Index("ix_formatted_training_data_user_format", "user_id", "format"),
    )


class TrainingRun(_PipelineRow, Base):
    __tablename__ = "training_runs"
    dataset_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("training_datasets.id", ondelete="SET NULL"))
    status: Mapped[str] = _status(TrainingRunStatus.PENDING)
    base_model: Mapped[str | None] = mapped_column(Text)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    hardware: Mapped[dict[str, Any]] = mapped_column(default=dict)
    checkpoint_path: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                 onupdate=utcnow, nullable=False)
    # Migration 0006: when housekeeping removed its checkpoint (the row stays).
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        Index("ix_training_runs_user_created", "user_id", "created_at"),
        Index("ix_training_runs_status", "status"),
    )


class TrainingMetric(Base):
    __tablename__ = "training_metrics"
    id: Mapped[uuid.UUID] = _pk()
    training_run_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("training_runs.id", ondelete="CASCADE"), nullable=False)
    dagster_run_id: Mapped[str | None] = mapped_column(String(64))
    step: Mapped[int] = mapped_column(Integer, nullable=False)
    epoch: Mapped[float | None] = mapped_column(Float)
    loss: Mapped[float | None] = mapped_column(Float)
    eval_loss: Mapped[float | None] = mapped_column(Float)
    learning_rate: Mapped[float | None] = mapped_column(Float)
    grad_norm: Mapped[float | None] = mapped_column(Float)
    tokens_per_second: Mapped[float | None] = mapped_column(Float)
    percent_complete: Mapped[float | None] = mapped_column(Float)
    eta_seconds: Mapped[float | None] = mapped_column(Float)
    # GPU figures are null unless measured (pynvml); never estimated.
    gpu_utilization: Mapped[float | None] = mapped_column(Float)
    vram_used_mb: Mapped[float | None] = mapped_column(Float)
    gpu_temperature_c: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = _created()
    __table_args__ = (Index("ix_training_metrics_run_step", "training_run_id", "step"),)


class ModelVersion(_PipelineRow, Base):
    __tablename__ = "model_versions"
    training_run_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("training_runs.id", ondelete="SET NULL"))
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    base_model: Mapped[str] = mapped_column(Text, nullable=False)
    adapter_path: Mapped[str | None] = mapped_column(Text)
    adapter_sha256: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = _status(ModelVersionStatus.TRAINED)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The user's current version is the one promoted last (migration 0003); the note says
    # why this version was promoted, or why it was not.
    promoted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    promotion_note: Mapped[str | None] = mapped_column(Text)
    # Migration 0006: when housekeeping removed its adapter files (the row stays).
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (Index("ix_model_versions_user_created", "user_id", "created_at"),
                      Index("ix_model_versions_user_promoted", "user_id", "promoted_at"))


class VoiceProfile(_PipelineRow, Base):
    __tablename__ = "voice_profiles"
    status: Mapped[str] = _status(VoiceProfileStatus.PENDING)
    profile: Mapped[dict[str, Any]] = mapped_column(default=dict)
    quality: Mapped[dict[str, Any]] = mapped_column(default=dict)
    __table_args__ = (Index("ix_voice_profiles_user_created", "user_id", "created_at"),)


class VoiceLlmIntegration(_PipelineRow, Base):
    __tablename__ = "voice_llm_integrations"
    voice_profile_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("voice_profiles.id", ondelete="SET NULL"))
    status: Mapped[str] = _status(VoiceIntegrationStatus.PENDING)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    stages: Mapped[dict[str, Any]] = mapped_column(default=dict)
    alignment_accuracy: Mapped[float | None] = mapped_column(Float)
    emotional_consistency: Mapped[float | None] = mapped_column(Float)
    __table_args__ = (Index("ix_voice_llm_integrations_user_created", "user_id", "created_at"),)


class ModelDeployment(_PipelineRow, Base):
    __tablename__ = "model_deployments"
    model_version_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(128), nullable=False)
    inference_type: Mapped[str] = mapped_column(String(32), nullable=False, default="text")
    optimizations: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = _status(DeploymentStatus.PENDING)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                 onupdate=utcnow, nullable=False)
    # Migration 0004: the engine (its base model) and the adapter name it serves this
    # deployment under; an update gets a new name, never a reload under the old one.
    engine: Mapped[str | None] = mapped_column(Text)
    adapter_name: Mapped[str | None] = mapped_column(String(128))
    settings: Mapped[dict[str, Any] | None] = mapped_column(JsonType)  # system prompt
    error: Mapped[str | None] = mapped_column(Text)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (Index("ix_model_deployments_user_created", "user_id", "created_at"),
                      Index("ix_model_deployments_status", "status"),
                      Index("uq_model_deployments_adapter_name", "adapter_name", unique=True))


class InferenceLog(Base):
    """Usage figures per request. Prompts and replies are not stored (they are personal)."""

    __tablename__ = "inference_logs"
    id: Mapped[uuid.UUID] = _pk()
    deployment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("model_deployments.id", ondelete="CASCADE"), nullable=False)
    user_id: Mapped[uuid.UUID] = _user_fk()
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    ttft_ms: Mapped[float | None] = mapped_column(Float)  # time to first token (0004)
    cached: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    status: Mapped[str] = _status(InferenceStatus.OK)
    error: Mapped[str | None] = mapped_column(String(200))  # a code, never request text
    created_at: Mapped[datetime] = _created()
    __table_args__ = (
        Index("ix_inference_logs_deployment_created", "deployment_id", "created_at"),
        Index("ix_inference_logs_user_created", "user_id", "created_at"),
    )


class ApiToken(Base):
    """A bearer token of the HTTP API, stored as its SHA-256 only. A user token reaches that
    user's deployments; an admin token (no user) reaches all."""

    __tablename__ = "api_tokens"
    id: Mapped[uuid.UUID] = _pk()
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128), nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    prefix: Mapped[str] = mapped_column(String(16), nullable=False)  # shown in listings
    admin: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = _created()
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TrainingWorkflow(_PipelineRow, Base):
    __tablename__ = "training_workflows"
    status: Mapped[str] = _status(WorkflowStatus.PENDING)
    include_voice_integration: Mapped[bool] = mapped_column(Boolean, nullable=False,
                                                            default=False)
    auto_deployment: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    stages: Mapped[dict[str, Any]] = mapped_column(default=dict)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Migration 0005: where it was queued, how urgent, what it was estimated from, and why
    # it failed. data_examples and hardware_profile pick the history an estimate uses.
    queue_name: Mapped[str | None] = mapped_column(String(64))
    priority: Mapped[str | None] = mapped_column(String(16))
    data_examples: Mapped[int | None] = mapped_column(Integer)
    hardware_profile: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (Index("ix_training_workflows_user_created", "user_id", "created_at"),
                      Index("ix_training_workflows_status", "status"))


class TrainingQueue(Base):
    """An admin's queue on the shared GPUs: how many of its runs may run at once and the
    run priority each priority name gets. Dagster's run queue enforces it (run tags)."""

    __tablename__ = "training_queues"
    id: Mapped[uuid.UUID] = _pk()
    name: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    owner: Mapped[str] = mapped_column(String(128), nullable=False)
    max_concurrent_jobs: Mapped[int] = mapped_column(Integer, nullable=False)
    priority_weights: Mapped[dict[str, Any]] = mapped_column(nullable=False)
    paused: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                 onupdate=utcnow, nullable=False)
