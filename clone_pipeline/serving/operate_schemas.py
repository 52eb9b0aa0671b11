"""Request bodies of the operating endpoints (the seed's camelCase field names)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from clone_pipeline.data.formats import FORMATS
from clone_pipeline.services.queues import MAX_CONCURRENT_JOBS

UserId = Field(default=None, min_length=1, max_length=128,
               description="Whose data; a user token may leave it out (their own).")
Priority = Literal["high", "medium", "low"]
WAIT = Field(default=20.0, ge=0, le=120,
             description="Seconds to wait for the run before answering 202 with its runId "
                         "(poll the same path with GET ?runId=).")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CollectRequest(_Body):
    userId: str | None = UserId
    includeLifeStories: bool = True
    includeMilestones: bool = True
    minWordCount: int = Field(default=20, ge=0, le=10_000)
    waitSeconds: float = WAIT


class FormatRequest(_Body):
    userId: str | None = UserId
    format: Literal[FORMATS] = Field(  # type: ignore[valid-type]
        default="conversational",
        description="The format reported; every format is written (training reads its own).")
    includeSystemPrompts: bool = True
    maxLength: int = Field(default=2048, ge=64, le=131_072)
    templateStyle: Literal["legacy_preservation", "casual"] = "legacy_preservation"
    waitSeconds: float = WAIT


class VoiceIntegrateRequest(_Body):
    userId: str | None = UserId
    voiceWeight: float = Field(default=0.7, ge=0, le=100)
    textWeight: float = Field(default=0.8, gt=0, le=100)
    emotionalAlignment: bool = True
    personalityConsistency: bool = True
    prosodyMapping: bool = True
    speechPatternLearning: bool = True
    waitSeconds: float = WAIT


class WorkflowRequest(_Body):
    action: Literal["start_complete_workflow"]
    userId: str | None = UserId
    includeVoiceIntegration: bool = True
    autoDeployment: bool = True
    priority: Priority = "medium"
    queueName: str | None = Field(default=None, min_length=1, max_length=64)
    trainingConfig: dict[str, Any] | None = Field(
        default=None, description="trained_adapter config fields (as in the Dagster launchpad), "
                                  "e.g. {\"max_steps\": 50}.")


class GpuManagerRequest(_Body):
    action: Literal["start_training", "stop_training", "get_gpu_status", "optimize_settings",
                    "create_admin_queue"]
    userId: str | None = UserId
    jobId: str | None = Field(default=None, min_length=1, max_length=64)
    priority: Priority = "medium"
    queueName: str | None = Field(default=None, min_length=1, max_length=64)
    trainingConfig: dict[str, Any] | None = None
    adminId: str | None = Field(default=None, min_length=1, max_length=128)
    maxConcurrentJobs: int = Field(default=1, ge=1, le=MAX_CONCURRENT_JOBS)
    priorityWeights: dict[str, int] | None = None
