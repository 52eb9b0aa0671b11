"""Sensors: keep a partition for every user and request data (and voice) runs for users whose
material changed; close the training-run rows of Dagster runs that failed or were cancelled;
keep the workflows' rows up to date."""

from datetime import datetime

import dagster as dg

from clone_pipeline.db.session import safe_url
from clone_pipeline.db.statuses import TrainingRunStatus
from clone_pipeline.defs.assets_data import collected_training_data
from clone_pipeline.defs.assets_voice import voice_profile
from clone_pipeline.defs.jobs import data_only, voice_integration
from clone_pipeline.defs.partitions import users
from clone_pipeline.defs.resources import CloneSettings
from clone_pipeline.launch.workflows import active_workflows
from clone_pipeline.services import training as runs
from clone_pipeline.services.users import changed_users


@dg.sensor(job=data_only, minimum_interval_seconds=30,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Adds a partition for every user in the domain database that has "
                       "none, and requests a data_only run for each user whose material "
                       "changed since the last tick (cursor over updated_at; with no "
                       "cursor yet, since its collected_training_data was last "
                       "materialised). It never removes partitions: clone-pipeline "
                       "remove-user does.")
def user_data_changed(context: dg.SensorEvaluationContext,
                      clone: CloneSettings) -> dg.SensorResult:
    return _changed_users(context, clone, None, collected_training_data.key)


@dg.sensor(job=voice_integration, minimum_interval_seconds=60,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Requests a voice_integration run for each user whose voice "
                       "recordings changed since the last tick (cursor over updated_at; "
                       "with no cursor yet, since its voice_profile was last "
                       "materialised).")
def voice_recordings_changed(context: dg.SensorEvaluationContext,
                             clone: CloneSettings) -> dg.SensorResult:
    return _changed_users(context, clone, ("voice_recordings",), voice_profile.key)


def _changed_users(context: dg.SensorEvaluationContext, clone: CloneSettings,
                   tables: tuple[str, ...] | None, asset_key: dg.AssetKey) -> dg.SensorResult:
    """Run requests for users changed since the cursor, and a partition for every user who
    lacks one (reconciled on every tick, so partitions can always be rebuilt).

    With no cursor (a first start, a new instance, a reset sensor), "changed" means changed
    since the run that last materialised *asset_key* for that user started: an empty cursor
    is no reason to redo work that is already done (and mark everything downstream stale).
    """
    since = datetime.fromisoformat(context.cursor) if context.cursor else None
    settings = clone.settings()
    changes, current = changed_users(settings, since, tables)
    cursor = max(changes.values()).isoformat() if changes else context.cursor
    if since is None and changes:
        stale = _changed_since_materialised(context.instance, asset_key, changes)
        if len(stale) < len(changes):
            context.log.info(f"no cursor yet: {len(changes) - len(stale)} user(s) unchanged "
                             f"since {asset_key.to_user_string()} was last materialised; "
                             f"requesting runs for {len(stale)}")
        changes = stale
    registered = set(context.instance.get_dynamic_partitions(users.name))
    if not current and registered:
        # Most likely a process started without CLONE_HOME / CLONE_DATABASE_URL: an empty
        # database is never a reason to touch the partitions of the real one.
        context.log.warning(f"the domain database at {safe_url(settings.database_url)} has no "
                            f"users while {len(registered)} partitions exist; check CLONE_HOME "
                            f"and CLONE_DATABASE_URL. Nothing changed.")
    missing = sorted(current - registered)
    return dg.SensorResult(
        run_requests=[dg.RunRequest(partition_key=key, run_key=f"{key}@{ts.isoformat()}")
                      for key, ts in sorted(changes.items())],
        dynamic_partitions_requests=[users.build_add_request(missing)] if missing else [],
        cursor=cursor,
    )


def _changed_since_materialised(instance: dg.DagsterInstance, asset_key: dg.AssetKey,
                                changes: dict[str, datetime]) -> dict[str, datetime]:
    """The users whose latest change is later than the start of the run that last
    materialised their partition of *asset_key* (or who have none). The run's start, not the
    materialisation, because the run read the source rows after it started."""
    stale = {}
    for key, changed_at in changes.items():
        latest = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[key]), limit=1).records
        if latest:
            run = instance.get_run_record_by_id(latest[0].run_id)
            started = run.start_time if run and run.start_time else latest[0].timestamp
            if changed_at.timestamp() <= started:
                continue
        stale[key] = changed_at
    return stale


@dg.run_failure_sensor(default_status=dg.DefaultSensorStatus.RUNNING,
                       description="Marks the training runs a failed Dagster run left pending "
                                   "or running (a killed run worker, say) as failed, with the "
                                   "run's failure message.")
def training_run_failed(context: dg.RunFailureSensorContext, clone: CloneSettings) -> None:
    _close(context, clone, TrainingRunStatus.FAILED,
           f"the Dagster run failed: {failure_reason(context.failure_event)}")


def failure_reason(event: dg.DagsterEvent) -> str:
    """A failed run's message and what its error says (a lost Celery worker, a step's
    exception), without the stack trace: "…failed. … [trained_adapter]: billiard.exceptions.
    WorkerLostError: Worker exited prematurely: signal 9 (SIGKILL)…"."""
    message = event.message or "no failure message"
    error = getattr(event.event_specific_data, "error", None)
    if error is None:
        return message
    detail = " ".join(error.message.split("Stack Trace:")[0].split())
    prefix = f"{error.cls_name}: "
    detail = detail.split(prefix, 1)[-1] if prefix in detail[:200] else detail
    return f"{message} {detail}"[:2000]


@dg.run_status_sensor(run_status=dg.DagsterRunStatus.CANCELED,
                      default_status=dg.DefaultSensorStatus.RUNNING,
                      description="Marks the training runs a cancelled Dagster run left "
                                  "pending or running as cancelled.")
def training_run_canceled(context: dg.RunStatusSensorContext, clone: CloneSettings) -> None:
    _close(context, clone, TrainingRunStatus.CANCELLED,
           "the Dagster run was cancelled before training recorded its outcome; materialise "
           "again to resume")


def _close(context: dg.RunStatusSensorContext, clone: CloneSettings,
           status: TrainingRunStatus, error: str) -> None:
    run_id = context.dagster_run.run_id
    closed = runs.close_unfinished_runs(clone.settings(), run_id, status, error)
    if closed:
        context.log.info(f"{closed} training run(s) of Dagster run {run_id} marked {status}")


@dg.sensor(minimum_interval_seconds=15, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Brings the training_workflows rows of workflows in progress up to "
                       "date from their runs (stage states, times, why one stopped), so the "
                       "table is right even when nobody asks the API.")
def workflow_progress(context: dg.SensorEvaluationContext,
                      clone: CloneSettings) -> dg.SkipReason:
    updated = active_workflows(clone.settings(), context.instance)
    return dg.SkipReason(f"{len(updated)} workflow(s) in progress brought up to date")
