"""Complete workflows and training runs launched into the queue, and their live progress.

A workflow is one run of the ``complete_workflow`` job over the stages the request asked for,
submitted through the webserver so the run queue orders it. Its ``training_workflows`` row is
brought up to date from Dagster's own records (run status, step events, check results)
whenever it is read, and by the ``workflow_progress`` sensor when the run ends.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dagster as dg

from clone_pipeline.db.statuses import WorkflowStatus
from clone_pipeline.launch.dagster_api import DagsterApi, DagsterUnavailableError, LaunchError
from clone_pipeline.launch.launch import (
    asset_config,
    deep_merge,
    launch_tags,
    run_job_for_user,
)
from clone_pipeline.launch.names import COMPLETE_WORKFLOW, WORKFLOW_TAG
from clone_pipeline.launch.runs import RunStatus, root_cause
from clone_pipeline.services import queues
from clone_pipeline.services import workflows as flows
from clone_pipeline.services.users import require_user
from clone_pipeline.settings import Settings
from clone_pipeline.training.hardware import hardware_class

TRAINING_STAGES = ["trained_adapter", "model_evaluation"]
_STEP_EVENTS = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS,
                dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.STEP_SKIPPED,
                dg.DagsterEventType.ASSET_CHECK_EVALUATION, dg.DagsterEventType.RUN_FAILURE}
_WORKFLOW_STATUS = {RunStatus.QUEUED: WorkflowStatus.PENDING,
                    RunStatus.RUNNING: WorkflowStatus.RUNNING,
                    RunStatus.SUCCEEDED: WorkflowStatus.COMPLETED,
                    RunStatus.FAILED: WorkflowStatus.FAILED,
                    RunStatus.CANCELLED: WorkflowStatus.CANCELLED}


def start_workflow(settings: Settings, instance: dg.DagsterInstance, external_id: str, *,
                   include_voice_integration: bool = True, auto_deployment: bool = True,
                   queue: str | None = None, priority: str = queues.DEFAULT_PRIORITY,
                   run_config: dict[str, Any] | None = None,
                   api: DagsterApi | None = None) -> flows.WorkflowView:
    """Record a workflow and submit its run to the queue; returns it (pending)."""
    require_user(settings, external_id)
    tags = launch_tags(settings, queue, priority)
    stages = flows.stages_for(include_voice_integration, auto_deployment)
    workflow_id = flows.create_workflow(settings, external_id, include_voice_integration,
                                        auto_deployment, queue, priority, hardware_class())
    config = deep_merge(_workflow_config(include_voice_integration, auto_deployment),
                         run_config or {})
    try:
        run = run_job_for_user(instance, COMPLETE_WORKFLOW, external_id, config,
                               {**tags, WORKFLOW_TAG: str(workflow_id)}, assets=stages,
                               queued=True, settings=settings, api=api)
    except (DagsterUnavailableError, LaunchError) as exc:
        flows.attach_run(settings, workflow_id, None, error=str(exc))
        raise
    flows.attach_run(settings, workflow_id, run.run_id)
    return flows.get_workflow(settings, str(workflow_id))


def start_training(settings: Settings, instance: dg.DagsterInstance, external_id: str, *,
                   queue: str | None = None, priority: str = queues.DEFAULT_PRIORITY,
                   run_config: dict[str, Any] | None = None,
                   api: DagsterApi | None = None) -> str:
    """Submit a training run (train, then evaluate) to the queue; returns its run id."""
    tags = launch_tags(settings, queue, priority)
    return run_job_for_user(instance, COMPLETE_WORKFLOW, external_id, run_config, tags,
                            settings, assets=TRAINING_STAGES, queued=True, api=api).run_id


def cancel(settings: Settings, run_id: str, api: DagsterApi | None = None) -> None:
    (api or DagsterApi(settings)).terminate(run_id)


def workflow_status(settings: Settings, instance: dg.DagsterInstance,
                    workflow_id: str) -> flows.WorkflowView:
    """The workflow with its stages brought up to date from Dagster's records."""
    view = flows.get_workflow(settings, workflow_id)
    if view.dagster_run_id and view.status in (WorkflowStatus.PENDING, WorkflowStatus.RUNNING):
        record_run(settings, instance, view)
        view = flows.get_workflow(settings, workflow_id)
    return view


def active_workflows(settings: Settings, instance: dg.DagsterInstance,
                     external_id: str | None = None) -> list[flows.WorkflowView]:
    return [workflow_status(settings, instance, str(w.id))
            for w in flows.active_workflows(settings, external_id)]


def record_run(settings: Settings, instance: dg.DagsterInstance,
               view: flows.WorkflowView) -> None:
    """Write the run's state into the workflow row: each stage from its step events, the
    workflow from the run's status, and the reason when it stopped short."""
    record = instance.get_run_record_by_id(view.dagster_run_id)
    if record is None:
        return
    stages = {name: dict(state) for name, state in view.stages.items()}
    failures: list[str] = []
    for entry in instance.all_logs(view.dagster_run_id, of_type=_STEP_EVENTS):
        event = entry.dagster_event
        when = datetime.fromtimestamp(entry.timestamp, UTC).isoformat()
        if event.event_type == dg.DagsterEventType.RUN_FAILURE:
            failures.append(entry.message or "the run failed")
            continue
        if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.asset_check_evaluation_data
            if not evaluation.passed:
                failures.append(f"check {evaluation.check_name} of "
                                f"{evaluation.asset_key.to_user_string()} failed: "
                                f"{evaluation.description or 'no reason given'}")
            continue
        state = stages.get(event.step_key or "")
        if state is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            state.update(status="running", startedAt=when)
        elif event.event_type == dg.DagsterEventType.STEP_SUCCESS:
            state.update(status="completed", finishedAt=when,
                         durationSeconds=_seconds(state.get("startedAt"), when))
        elif event.event_type == dg.DagsterEventType.STEP_SKIPPED:
            state.update(status="skipped", finishedAt=when)
        else:
            state.update(status="failed", finishedAt=when)
            failures.append(f"{event.step_key}: {_step_error(event)}")
    status = _WORKFLOW_STATUS[RunStatus.of(record.dagster_run.status)]
    if status == WorkflowStatus.COMPLETED and any(s["status"] != "completed"
                                                 for s in stages.values()):
        status = WorkflowStatus.FAILED  # a blocking check stopped it: not a success
    if status in (WorkflowStatus.FAILED, WorkflowStatus.CANCELLED):
        for state in stages.values():
            if state["status"] in ("pending", "running"):
                state["status"] = "cancelled" if status == WorkflowStatus.CANCELLED else "skipped"
    error = "; ".join(dict.fromkeys(failures)) or (
        "cancelled" if status == WorkflowStatus.CANCELLED else None)
    flows.record_progress(settings, view.id, status, stages, _time(record.start_time),
                          _time(record.end_time), error if status != WorkflowStatus.COMPLETED
                          else None)


def _workflow_config(include_voice: bool, auto_deployment: bool) -> dict[str, Any]:
    configs: dict[str, dict[str, Any]] = {}
    if include_voice:
        configs["trained_adapter"] = {"include_voice_integration": True}
    if auto_deployment:
        configs["deployment"] = {"auto_deploy": True}
    return asset_config(configs)


def _step_error(event) -> str:
    return root_cause(event.step_failure_data.error if event.step_failure_data else None)


def _seconds(start: str | None, end: str) -> float | None:
    if not start:
        return None
    return round((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds(), 3)


def _time(timestamp: float | None) -> datetime | None:
    return datetime.fromtimestamp(timestamp, UTC) if timestamp else None
