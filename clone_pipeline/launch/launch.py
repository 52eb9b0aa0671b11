"""Launch a job for one user: queued through the webserver, or executed in this process.

Queued (the REST API, `clone-pipeline workflow`), the run waits in the instance's run queue
until its admin queue, the GPU pool and its priority let the daemon start it, and the call
returns at once. In-process (`clone-pipeline run`, the demo, the tests), it runs here and the
call returns when it has finished. Either way it is recorded in the instance (the UI shows it)
and comes back as one `Run`.
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Callable
from typing import Any

import dagster as dg

from clone_pipeline.launch.dagster_api import DagsterApi
from clone_pipeline.launch.names import (
    CODE_LOCATION,
    COMPLETE_WORKFLOW,
    MAX_RUNTIME_TAG,
    USERS_PARTITIONS,
)
from clone_pipeline.launch.runs import Run, RunStatus, run_of
from clone_pipeline.services import queues
from clone_pipeline.services.users import require_user
from clone_pipeline.services.workflows import stages_for
from clone_pipeline.settings import Settings


def run_job_for_user(instance: dg.DagsterInstance, job_name: str, external_id: str,
                     run_config: dict[str, Any] | None = None,
                     tags: dict[str, str] | None = None,
                     settings: Settings | None = None,
                     on_start: Callable[[str], None] | None = None,
                     assets: list[str] | None = None, *, queued: bool = False,
                     api: DagsterApi | None = None) -> Run:
    """Register *external_id* as a partition and start *job_name* for it: *queued* through
    the webserver (returns the queued run; needs *settings*), else executed in this process
    (returns the finished run).

    With *settings*, an unknown user is refused before a partition or a run is created.
    *on_start* gets the run's id before it executes (to follow it from elsewhere). *assets*
    narrows the run to those assets (with their checks); complete_workflow runs without its
    voice stages unless they are asked for.
    """
    if settings is not None:
        require_user(settings, external_id)
    instance.add_dynamic_partitions(USERS_PARTITIONS, [external_id])
    if assets is None and job_name == COMPLETE_WORKFLOW:
        assets = stages_for(include_voice_integration=False, auto_deployment=True)
    if queued:
        if settings is None:
            raise ValueError("a queued launch needs the settings (the webserver's address)")
        run_id = (api or DagsterApi(settings)).launch(job_name, external_id, tags or {},
                                                      run_config, assets)
        if on_start is not None:
            on_start(run_id)
        return Run(run_id, job_name, external_id, RunStatus.QUEUED)
    job = code_location().resolve_job_def(job_name)
    run_id = str(uuid.uuid4())  # the form of Dagster's own run ids
    if on_start is not None:
        on_start(run_id)
    # A job's baked config (a training preset, auto_deploy) stays under what the caller
    # gives: Dagster would otherwise drop it as soon as any run config is passed.
    baked = job.get_run_config_for_partition_key(external_id) or {}
    selection = [dg.AssetKey(name) for name in assets] if assets is not None else None
    job.execute_in_process(partition_key=external_id, instance=instance,
                           asset_selection=selection,
                           run_config=deep_merge(baked, run_config or {}), tags=tags,
                           raise_on_error=False, run_id=run_id)
    return run_of(instance, run_id)


def code_location() -> dg.Definitions:
    """The Definitions Dagster loads, imported by name when a run first executes here (the
    launcher sits below them, as Dagster's own code server does)."""
    return importlib.import_module(CODE_LOCATION).defs


def launch_tags(settings: Settings, queue_name: str | None, priority: str) -> dict[str, str]:
    """Queue, priority and the hung-run guard for a queued launch."""
    queue = queues.get_queue(settings, queue_name) if queue_name else None
    return {**queues.run_tags(queue, priority), MAX_RUNTIME_TAG: str(settings.max_run_seconds)}


def asset_config(configs: dict[str, dg.Config | dict[str, Any]]) -> dict[str, Any]:
    """The run config giving each asset (by name) its config: a typed Config (the fields set
    on it; the others keep their defaults) or the fields themselves."""
    return {"ops": {asset: {"config": config.model_dump(exclude_unset=True)
                            if isinstance(config, dg.Config) else dict(config)}
                    for asset, config in configs.items()}} if configs else {}


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """*base* with *override* laid over it, nested dicts merged key by key."""
    merged = dict(base)
    for key, value in override.items():
        merged[key] = (deep_merge(merged[key], value)
                       if isinstance(value, dict) and isinstance(merged.get(key), dict)
                       else value)
    return merged
