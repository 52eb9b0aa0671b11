"""Schedules: a nightly refresh of every registered user's data assets, and housekeeping."""

import dagster as dg

from clone_pipeline.defs.jobs import data_only, housekeeping
from clone_pipeline.defs.partitions import users


@dg.schedule(job=data_only, cron_schedule="0 3 * * *", execution_timezone="UTC",
             description="Re-collect and re-format every user's data at 03:00 UTC.")
def nightly_data_refresh(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
    day = context.scheduled_execution_time.strftime("%Y-%m-%d")
    return [dg.RunRequest(partition_key=key, run_key=f"nightly:{day}:{key}")
            for key in sorted(context.instance.get_dynamic_partitions(users.name))]


nightly_housekeeping = dg.ScheduleDefinition(
    name="nightly_housekeeping", job=housekeeping, cron_schedule="30 4 * * *",
    execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Archive expired training output and report disk use at 04:30 UTC.")
