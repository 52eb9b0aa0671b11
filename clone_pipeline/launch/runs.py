"""A Dagster run as people ask about it: the one result every launch returns and every status
read gives, in one status vocabulary (the REST API's and the CLI's)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import dagster as dg

from clone_pipeline.launch.names import PARTITION_TAG

POLL_S = 0.25


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"  # starting, started, or being cancelled
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)

    @classmethod
    def of(cls, status: dg.DagsterRunStatus) -> RunStatus:
        return _FROM_DAGSTER.get(status, cls.RUNNING)


_FROM_DAGSTER = {dg.DagsterRunStatus.QUEUED: RunStatus.QUEUED,
                 dg.DagsterRunStatus.NOT_STARTED: RunStatus.QUEUED,
                 dg.DagsterRunStatus.SUCCESS: RunStatus.SUCCEEDED,
                 dg.DagsterRunStatus.FAILURE: RunStatus.FAILED,
                 dg.DagsterRunStatus.CANCELED: RunStatus.CANCELLED}
_OUTCOME_EVENTS = {dg.DagsterEventType.ASSET_MATERIALIZATION,
                   dg.DagsterEventType.ASSET_CHECK_EVALUATION,
                   dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE}


class UnknownRunError(LookupError):
    def __init__(self, run_id: str):
        super().__init__(f"no run {run_id!r}")


@dataclass(frozen=True)
class Run:
    """What a run is doing or did for one user. *success* means every asset it asked for was
    built: a run that a failed check stopped (a user not ready yet, say) is not a success even
    when Dagster records the run itself as succeeded."""

    run_id: str
    job: str
    user: str | None
    status: RunStatus
    started: datetime | None = None
    ended: datetime | None = None
    materialized: list[str] = field(default_factory=list)
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)  # passed, description
    error: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status.finished

    @property
    def failed_checks(self) -> dict[str, str]:
        """check -> why it failed"""
        return {name: check["description"] or "failed" for name, check in self.checks.items()
                if not check["passed"]}

    @property
    def success(self) -> bool:
        return self.status == RunStatus.SUCCEEDED and not self.failed_checks


def run_of(instance: dg.DagsterInstance, run_id: str) -> Run:
    """The run as its records show it now (UnknownRunError if there is none)."""
    record = instance.get_run_record_by_id(run_id)
    if record is None:
        raise UnknownRunError(run_id)
    return _run(instance, record)


def recent_runs(instance: dg.DagsterInstance, external_id: str | None = None,
                limit: int = 20) -> list[Run]:
    """The newest *limit* runs (of one user's partition when *external_id* is given)."""
    filters = dg.RunsFilter(tags={PARTITION_TAG: external_id}) if external_id else None
    return [_run(instance, record)
            for record in instance.get_run_records(filters=filters, limit=limit)]


def status_of(instance: dg.DagsterInstance, run_id: str) -> RunStatus | None:
    """A run's status alone, or None if there is no such run."""
    run = instance.get_run_by_id(run_id)
    return RunStatus.of(run.status) if run else None


def wait_for_run(instance: dg.DagsterInstance, run_id: str, seconds: float) -> None:
    """Return when the run has finished or *seconds* have passed, whichever is first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = status_of(instance, run_id)
        if status is None or status.finished:
            return
        time.sleep(POLL_S)


def step_seconds(instance: dg.DagsterInstance, run_id: str) -> dict[str, float]:
    """How long each finished step of a run took (step key -> seconds), for the demo's
    "where the time went"."""
    return {stats.step_key: stats.end_time - stats.start_time
            for stats in instance.get_run_step_stats(run_id)
            if stats.start_time is not None and stats.end_time is not None}


def root_cause(error) -> str:
    """The innermost message of a Dagster error (it wraps user errors in its own)."""
    while error is not None and error.cause is not None:
        error = error.cause
    return error.message.strip().splitlines()[-1] if error else "failed"


def _run(instance: dg.DagsterInstance, record: dg.RunRecord) -> Run:
    run = record.dagster_run
    made: set[str] = set()
    checks: dict[str, dict[str, Any]] = {}
    errors: list[str] = []
    for entry in instance.all_logs(run.run_id, of_type=_OUTCOME_EVENTS):
        event = entry.dagster_event
        if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            made.add(entry.asset_materialization.asset_key.to_user_string())
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.asset_check_evaluation_data
            checks[evaluation.check_name] = {"passed": evaluation.passed,
                                             "description": evaluation.description}
        elif event.event_type == dg.DagsterEventType.STEP_FAILURE:
            errors.append(f"{event.step_key}: " + root_cause(
                event.step_failure_data.error if event.step_failure_data else None))
        elif not errors:
            errors.append(entry.message or "the run failed")
    return Run(run.run_id, run.job_name, run.tags.get(PARTITION_TAG), RunStatus.of(run.status),
               _time(record.start_time), _time(record.end_time), sorted(made), checks,
               "; ".join(errors) or None, dict(run.tags))


def _time(timestamp: float | None) -> datetime | None:
    return datetime.fromtimestamp(timestamp).astimezone() if timestamp else None
