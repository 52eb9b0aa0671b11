"""One-stage runs the REST API launches (collect, format, voice integration) and what they
materialised.

Each is a run of ``complete_workflow`` narrowed to its assets, submitted through the
webserver like every other launch, so it shows in the UI and waits in the queue. A caller may
wait a short while for it; a run that takes longer is answered with its id to poll.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import dagster as dg

from clone_pipeline.control.dagster_api import DagsterApi
from clone_pipeline.control.workflows import (
    USERS_PARTITIONS,
    WORKFLOW_JOB,
    launch_tags,
    root_cause,
)
from clone_pipeline.services.users import require_user
from clone_pipeline.settings import Settings

FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE,
            dg.DagsterRunStatus.CANCELED}
POLL_S = 0.25


class UnknownRunError(LookupError):
    def __init__(self, run_id: str):
        super().__init__(f"no run {run_id!r}")


@dataclass(frozen=True)
class RunOutcome:
    """A run as the API reports it: its state, its checks, why it failed."""

    run_id: str
    user: str | None
    status: str  # queued, running, succeeded, failed, cancelled
    checks: dict[str, dict[str, Any]]  # check name -> passed, description
    error: str | None

    @property
    def finished(self) -> bool:
        return self.status in ("succeeded", "failed", "cancelled")


def launch_assets(settings: Settings, instance: dg.DagsterInstance, external_id: str,
                  assets: list[str], run_config: dict[str, Any], priority: str = "medium",
                  api: DagsterApi | None = None) -> str:
    """Submit a run of *assets* for one user to the queue; returns its Dagster run id."""
    require_user(settings, external_id)
    instance.add_dynamic_partitions(USERS_PARTITIONS, [external_id])
    return (api or DagsterApi(settings)).launch(
        WORKFLOW_JOB, external_id, launch_tags(settings, None, priority), run_config, assets)


def wait_for_run(instance: dg.DagsterInstance, run_id: str, seconds: float) -> None:
    """Return when the run has finished or *seconds* have passed, whichever is first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        run = instance.get_run_by_id(run_id)
        if run is None or run.status in FINISHED:
            return
        time.sleep(POLL_S)


def run_outcome(instance: dg.DagsterInstance, run_id: str) -> RunOutcome:
    run = instance.get_run_by_id(run_id)
    if run is None:
        raise UnknownRunError(run_id)
    checks: dict[str, dict[str, Any]] = {}
    errors: list[str] = []
    wanted = {dg.DagsterEventType.ASSET_CHECK_EVALUATION, dg.DagsterEventType.STEP_FAILURE,
              dg.DagsterEventType.RUN_FAILURE}
    for entry in instance.all_logs(run_id, of_type=wanted):
        event = entry.dagster_event
        if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.asset_check_evaluation_data
            checks[evaluation.check_name] = {"passed": evaluation.passed,
                                             "description": evaluation.description}
        elif event.event_type == dg.DagsterEventType.STEP_FAILURE:
            errors.append(f"{event.step_key}: " + root_cause(
                event.step_failure_data.error if event.step_failure_data else None))
        elif not errors:
            errors.append(entry.message or "the run failed")
    return RunOutcome(run_id, run.tags.get("dagster/partition"), _status(run.status), checks,
                      "; ".join(errors) or None)


def _status(status: dg.DagsterRunStatus) -> str:
    return {dg.DagsterRunStatus.QUEUED: "queued", dg.DagsterRunStatus.NOT_STARTED: "queued",
            dg.DagsterRunStatus.SUCCESS: "succeeded", dg.DagsterRunStatus.FAILURE: "failed",
            dg.DagsterRunStatus.CANCELED: "cancelled"}.get(status, "running")
