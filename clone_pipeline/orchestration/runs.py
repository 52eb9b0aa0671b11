"""Recent Dagster runs as people ask about them: job, user, status, times, what they made."""

from dataclasses import dataclass, field
from datetime import datetime

import dagster as dg

PARTITION_TAG = "dagster/partition"  # Dagster sets it on every partitioned run


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    job: str
    user: str | None
    status: str
    started: datetime | None
    ended: datetime | None
    materialized: list[str] = field(default_factory=list)


def recent_runs(instance: dg.DagsterInstance, external_id: str | None = None,
                limit: int = 20) -> list[RunSummary]:
    """The newest *limit* runs (of one user's partition when *external_id* is given)."""
    filters = dg.RunsFilter(tags={PARTITION_TAG: external_id}) if external_id else None
    summaries = []
    for record in instance.get_run_records(filters=filters, limit=limit):
        run = record.dagster_run
        events = instance.all_logs(run.run_id,
                                   of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
        made = sorted({e.asset_materialization.asset_key.to_user_string() for e in events
                       if e.asset_materialization})
        summaries.append(RunSummary(
            run.run_id, run.job_name, run.tags.get(PARTITION_TAG), run.status.value,
            _time(record.start_time), _time(record.end_time), made))
    return summaries


def run_status(instance: dg.DagsterInstance, run_id: str) -> str | None:
    """A Dagster run's status (QUEUED, STARTED, SUCCESS, ...), or None if there is none."""
    run = instance.get_run_by_id(run_id)
    return run.status.value if run else None


def _time(timestamp: float | None) -> datetime | None:
    return datetime.fromtimestamp(timestamp).astimezone() if timestamp else None
