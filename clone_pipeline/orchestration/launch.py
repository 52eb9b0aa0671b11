"""Launch a job for one user through Dagster and summarise the outcome."""

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from clone_pipeline.control.workflows import deep_merge, root_cause
from clone_pipeline.defs.partitions import users
from clone_pipeline.services.users import require_user
from clone_pipeline.services.workflows import stages_for
from clone_pipeline.settings import Settings


@dataclass
class RunOutcome:
    """What a run did for one user. *success* means every asset the job asked for was
    built: a run that a failed check stopped (a user not ready yet, say) is not a success
    even when Dagster records the run itself as succeeded."""

    run_id: str
    success: bool
    materialized: list[str] = field(default_factory=list)
    failed_checks: dict[str, str] = field(default_factory=dict)  # check -> description
    error: str | None = None


def run_job_for_user(instance: dg.DagsterInstance, job_name: str, external_id: str,
                     run_config: dict[str, Any] | None = None,
                     tags: dict[str, str] | None = None,
                     settings: Settings | None = None,
                     on_start: Callable[[str], None] | None = None,
                     assets: list[str] | None = None) -> RunOutcome:
    """Register *external_id* as a partition and execute *job_name* for it in this process.

    The run, its events and lineage are recorded in *instance* (visible in the UI). With
    *settings*, an unknown user is refused before a partition or a run is created.
    *on_start* gets the run's id before it executes (to follow it from elsewhere). *assets*
    narrows the run to those assets; complete_workflow runs without its voice stages here (a
    queued `workflow start` picks its own).
    """
    from clone_pipeline.definitions import defs

    if settings is not None:
        require_user(settings, external_id)
    instance.add_dynamic_partitions(users.name, [external_id])
    job = defs.resolve_job_def(job_name)
    run_id = str(uuid.uuid4())  # the form of Dagster's own run ids
    if on_start is not None:
        on_start(run_id)
    # A job's baked config (a training preset, auto_deploy) stays under what the caller
    # gives: Dagster would otherwise drop it as soon as any run config is passed.
    baked = job.get_run_config_for_partition_key(external_id) or {}
    if assets is None and job_name == "complete_workflow":
        assets = stages_for(include_voice_integration=False, auto_deployment=True)
    selection = [dg.AssetKey(name) for name in assets] if assets is not None else None
    result = job.execute_in_process(partition_key=external_id, instance=instance,
                                    asset_selection=selection,
                                    run_config=deep_merge(baked, run_config or {}), tags=tags,
                                    raise_on_error=False, run_id=run_id)
    failed = {e.check_name: (e.description or "failed")
              for e in result.get_asset_check_evaluations() if not e.passed}
    error = None
    if not result.success:
        failures = [e for e in result.all_events if e.is_step_failure]
        error = root_cause(failures[0].step_failure_data.error) if failures else "run failed"
    return RunOutcome(
        run_id=result.run_id, success=result.success and not failed,
        materialized=sorted({e.asset_key.to_user_string()
                             for e in result.get_asset_materialization_events()
                             if e.asset_key}),
        failed_checks=failed, error=error)
