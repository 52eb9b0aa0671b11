"""Request bodies of the operating endpoints (the seed's camelCase field names).

A field that sets a core option takes its default from the core dataclass (CollectOptions,
FormatOptions, IntegrationSettings, ...), the one definition of each default;
test_defs/test_config_parity.py fails if one drifts.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from clone_pipeline.data.collect import CollectOptions
from clone_pipeline.data.format_dataset import FormatOptions
from clone_pipeline.data.formats import FORMATS
from clone_pipeline.data.prompts import TEMPLATE_STYLES, TemplateStyle
from clone_pipeline.services.queues import DEFAULT_PRIORITY, MAX_CONCURRENT_JOBS, PRIORITIES
from clone_pipeline.training.config import TrainConfig
from clone_pipeline.voice.integration import IntegrationSettings

UserId = Field(default=None, min_length=1, max_length=128,
               description="Whose data; a user token may leave it out (their own).")
Priority = Literal[PRIORITIES]  # type: ignore[valid-type]
WAIT = Field(default=20.0, ge=0, le=120,
             description="Seconds to wait for the run before answering 202 with its runId "
                         "(poll the same path with GET ?runId=).")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CollectRequest(_Body):
    userId: str | None = UserId
    includeLifeStories: bool = CollectOptions.include_life_stories
    includeMilestones: bool = CollectOptions.include_milestones
    minWordCount: int = Field(default=CollectOptions.min_word_count, ge=0, le=10_000)
    waitSeconds: float = WAIT


class FormatRequest(_Body):
    userId: str | None = UserId
    format: Literal[FORMATS] = Field(  # type: ignore[valid-type]
        default=TrainConfig.train_format,
        description="The format reported (by default the one training reads); every format "
                    "is written.")
    includeSystemPrompts: bool = FormatOptions.include_system_prompts
    maxLength: int = Field(default=FormatOptions.max_length, ge=64, le=131_072)
    templateStyle: Literal[TEMPLATE_STYLES] = (  # type: ignore[valid-type]
        TemplateStyle.LEGACY_PRESERVATION.value)
    waitSeconds: float = WAIT


class VoiceIntegrateRequest(_Body):
    userId: str | None = UserId
    voiceWeight: float = Field(default=IntegrationSettings.voice_weight, ge=0, le=100)
    textWeight: float = Field(default=IntegrationSettings.text_weight, gt=0, le=100)
    emotionalAlignment: bool = IntegrationSettings.emotional_alignment
    personalityConsistency: bool = IntegrationSettings.personality_consistency
    prosodyMapping: bool = IntegrationSettings.prosody_mapping
    speechPatternLearning: bool = IntegrationSettings.speech_pattern_learning
    waitSeconds: float = WAIT


class WorkflowRequest(_Body):
    action: Literal["start_complete_workflow"]
    userId: str | None = UserId
    includeVoiceIntegration: bool = True
    autoDeployment: bool = True
    priority: Priority = DEFAULT_PRIORITY
    queueName: str | None = Field(default=None, min_length=1, max_length=64)
    trainingConfig: dict[str, Any] | None = Field(
        default=None, description="trained_adapter config fields (as in the Dagster launchpad), "
                                  "e.g. {\"max_steps\": 50}.")


class GpuManagerRequest(_Body):
    action: Literal["start_training", "stop_training", "get_gpu_status", "optimize_settings",
                    "create_admin_queue"]
    userId: str | None = UserId
    jobId: str | None = Field(default=None, min_length=1, max_length=64)
    priority: Priority = DEFAULT_PRIORITY
    queueName: str | None = Field(default=None, min_length=1, max_length=64)
    trainingConfig: dict[str, Any] | None = None
    adminId: str | None = Field(default=None, min_length=1, max_length=128)
    maxConcurrentJobs: int = Field(default=1, ge=1, le=MAX_CONCURRENT_JOBS)
    priorityWeights: dict[str, int] | None = None
