"""Complete workflows: one row per launch, its stages' progress, and estimates drawn from the
measured durations of earlier workflows (never from constants).

A workflow is one Dagster run of ``complete_workflow`` over the stages the request asked for;
the launch layer (``launch.workflows``) launches it and reports each stage's progress
here.
"""

from __future__ import annotations

import statistics
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from clone_pipeline.db import users, workflows
from clone_pipeline.db.models import utcnow
from clone_pipeline.db.session import session_scope
from clone_pipeline.db.statuses import WorkflowStatus
from clone_pipeline.db.users import as_utc
from clone_pipeline.settings import Settings

# Every stage a workflow can have, in run order (they are the asset names), with the label
# people see.
STAGES = {
    "collected_training_data": "Data collection & processing",
    "memory_index": "Memories (retrieval index)",
    "formatted_datasets": "Training data formatting",
    "voice_profile": "Voice analysis",
    "voice_alignment": "Voice-text alignment",
    "trained_adapter": "LLM training",
    "model_evaluation": "Evaluation",
    "deployment": "Model deployment",
}
VOICE_STAGES = ("voice_profile", "voice_alignment")
HISTORY = 20  # past workflows an estimate takes the median of, per stage
SIMILAR_SIZE = 2.0  # "similar data size": within this factor of the new workflow's examples


def stages_for(include_voice_integration: bool, auto_deployment: bool) -> list[str]:
    """The stages (asset names) a workflow with these options runs, in order."""
    return [name for name in STAGES
            if (include_voice_integration or name not in VOICE_STAGES)
            and (auto_deployment or name != "deployment")]


class UnknownWorkflowError(LookupError):
    def __init__(self, workflow_id: str):
        super().__init__(f"no workflow {workflow_id!r} (clone-pipeline workflow list shows the "
                         f"active ones)")


@dataclass(frozen=True)
class Estimate:
    """Seconds per stage from history (None where there is none) and what they rest on."""

    seconds: dict[str, float | None]
    basis: str

    @property
    def total(self) -> float | None:
        values = list(self.seconds.values())
        return None if any(v is None for v in values) else sum(values)


@dataclass(frozen=True)
class WorkflowView:
    id: uuid.UUID
    user: str
    status: str
    dagster_run_id: str | None
    include_voice_integration: bool
    auto_deployment: bool
    queue: str | None
    priority: str | None
    stages: dict[str, dict[str, Any]]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    estimate: Estimate = field(default_factory=lambda: Estimate({}, "not estimated"))

    @property
    def estimated_completion(self) -> datetime | None:
        total = self.estimate.total
        return None if total is None else (self.started_at or self.created_at) + timedelta(
            seconds=total)

    def as_dict(self) -> dict[str, Any]:
        """The REST API's shape (camelCase, ISO times)."""
        def iso(value):
            return value.isoformat() if value else None

        return {
            "workflowId": str(self.id), "userId": self.user, "status": self.status,
            "dagsterRunId": self.dagster_run_id,
            "includeVoiceIntegration": self.include_voice_integration,
            "autoDeployment": self.auto_deployment, "queue": self.queue,
            "priority": self.priority,
            "stages": [{"name": name, "label": STAGES[name], **state,
                        "estimatedSeconds": self.estimate.seconds.get(name)}
                       for name, state in self.stages.items()],
            "createdAt": iso(self.created_at), "startedAt": iso(self.started_at),
            "finishedAt": iso(self.finished_at), "error": self.error,
            "estimatedCompletion": iso(self.estimated_completion),
            "estimateBasis": self.estimate.basis,
        }


def create_workflow(settings: Settings, external_id: str, include_voice_integration: bool,
                    auto_deployment: bool, queue: str | None, priority: str,
                    hardware_profile: str) -> uuid.UUID:
    """A pending workflow row for *external_id* (which must exist), before its run starts."""
    stages = {name: {"status": "pending", "startedAt": None, "finishedAt": None,
                     "durationSeconds": None}
              for name in stages_for(include_voice_integration, auto_deployment)}
    with session_scope(settings.database_url) as session:
        user = users.get_user(session, external_id)
        examples = sum(users.item_counts(session, user.id).values())
        row = workflows.add(session, user_id=user.id, status=WorkflowStatus.PENDING,
                            include_voice_integration=include_voice_integration,
                            auto_deployment=auto_deployment, stages=stages, queue_name=queue,
                            priority=priority, data_examples=examples,
                            hardware_profile=hardware_profile)
        return row.id


def attach_run(settings: Settings, workflow_id: uuid.UUID, dagster_run_id: str | None,
               error: str | None = None) -> None:
    """Record the Dagster run a workflow became, or why it could not be launched."""
    with session_scope(settings.database_url) as session:
        row = _row(session, workflow_id)
        row.dagster_run_id = dagster_run_id
        if error is not None:
            row.status, row.error, row.finished_at = WorkflowStatus.FAILED, error, utcnow()


def record_progress(settings: Settings, workflow_id: uuid.UUID, status: WorkflowStatus,
                    stages: dict[str, dict[str, Any]], started_at: datetime | None,
                    finished_at: datetime | None, error: str | None) -> None:
    """Store what the run shows now: each stage's state and the workflow's."""
    with session_scope(settings.database_url) as session:
        row = _row(session, workflow_id)
        row.status, row.started_at, row.finished_at, row.error = (
            status, started_at, finished_at, error)
        row.stages = {name: stages.get(name, state) for name, state in row.stages.items()}


def get_workflow(settings: Settings, workflow_id: str) -> WorkflowView:
    try:
        key = uuid.UUID(str(workflow_id))
    except ValueError:
        raise UnknownWorkflowError(workflow_id) from None
    with session_scope(settings.database_url) as session:
        found = workflows.get(session, key)
        if found is None:
            raise UnknownWorkflowError(workflow_id)
        row = found[0]
        profile = row.hardware_profile or "cpu"
        history = [h for h in workflows.completed_on(session, profile) if h.id != row.id]
        view = _view(*found)
        return replace(view, estimate=_estimate(list(view.stages), row.data_examples, profile,
                                                history))


def active_workflows(settings: Settings, external_id: str | None = None) -> list[WorkflowView]:
    with session_scope(settings.database_url) as session:
        user_id = users.user_id_of(session, external_id) if external_id else None
        return [_view(row, ext) for row, ext in workflows.unfinished(session, user_id)]


def estimate(settings: Settings, stages: list[str], data_examples: int | None,
             hardware_profile: str) -> Estimate:
    with session_scope(settings.database_url) as session:
        history = workflows.completed_on(session, hardware_profile)
        return _estimate(stages, data_examples, hardware_profile, history)


def _estimate(stages: list[str], examples: int | None, profile: str, history) -> Estimate:
    """Median measured duration of each stage over the newest HISTORY completed workflows on
    the same hardware profile with a similar amount of data."""
    similar = [h for h in history
               if examples is None or h.data_examples is None
               or examples / SIMILAR_SIZE <= h.data_examples <= examples * SIMILAR_SIZE]
    seconds: dict[str, float | None] = {}
    counts = []
    for stage in stages:
        measured = [h.stages[stage]["durationSeconds"] for h in similar
                    if (h.stages.get(stage) or {}).get("durationSeconds") is not None
                    ][:HISTORY]
        seconds[stage] = statistics.median(measured) if measured else None
        counts.append(len(measured))
    missing = [s for s, v in seconds.items() if v is None]
    size = (f"{examples / SIMILAR_SIZE:.0f}-{examples * SIMILAR_SIZE:.0f} examples"
            if examples is not None else "any size")
    if missing:
        basis = (f"no estimate: no completed workflow on hardware profile {profile!r} with "
                 f"{size} measured {', '.join(missing)} yet")
    else:
        basis = (f"median of the measured durations of {min(counts)}-{max(counts)} completed "
                 f"workflows per stage on hardware profile {profile!r} with {size}")
    return Estimate(seconds, basis)


def _row(session, workflow_id: uuid.UUID):
    found = workflows.get(session, workflow_id)
    if found is None:
        raise UnknownWorkflowError(str(workflow_id))
    return found[0]


def _view(row, external_id: str) -> WorkflowView:
    return WorkflowView(row.id, external_id, row.status, row.dagster_run_id,
                        row.include_voice_integration, row.auto_deployment, row.queue_name,
                        row.priority, dict(row.stages), as_utc(row.created_at),
                        row.started_at and as_utc(row.started_at),
                        row.finished_at and as_utc(row.finished_at), row.error)
