"""Statuses of the pipeline tables, one vocabulary per table, backed by CHECK constraints.

Each is a StrEnum, so a row's status compares equal to its plain string and serialises as
one; the database refuses any other value (migration 0002).
"""

from __future__ import annotations

from enum import StrEnum


class TrainingRunStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    EARLY_STOPPED = "early_stopped"
    CANCELLED = "cancelled"
    FAILED = "failed"


# Rows in these states have no outcome yet; a run that ended without recording one is closed
# by the run-status sensors.
UNFINISHED_TRAINING = (TrainingRunStatus.PENDING, TrainingRunStatus.RUNNING)


class ModelVersionStatus(StrEnum):
    TRAINED = "trained"
    EVALUATED = "evaluated"


class VoiceProfileStatus(StrEnum):
    PENDING = "pending"
    READY = "ready"
    FAILED = "failed"


class VoiceIntegrationStatus(StrEnum):
    PENDING = "pending"
    PASSED = "passed"
    FAILED = "failed"


class DeploymentStatus(StrEnum):
    PENDING = "pending"
    DEPLOYING = "deploying"
    ACTIVE = "active"
    STOPPED = "stopped"
    FAILED = "failed"


class InferenceStatus(StrEnum):
    OK = "ok"
    ERROR = "error"
    CANCELLED = "cancelled"


class WorkflowStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


# table name -> the enum its `status` column is checked against
STATUS_COLUMNS: dict[str, type[StrEnum]] = {
    "training_runs": TrainingRunStatus,
    "model_versions": ModelVersionStatus,
    "voice_profiles": VoiceProfileStatus,
    "voice_llm_integrations": VoiceIntegrationStatus,
    "model_deployments": DeploymentStatus,
    "inference_logs": InferenceStatus,
    "training_workflows": WorkflowStatus,
}
