"""Closing the training-run rows a Dagster run left unfinished (SQLite and PostgreSQL)."""

import uuid

import pytest
from sqlalchemy import select

from clone_pipeline.db.models import TrainingRun, User
from clone_pipeline.db.session import session_scope
from clone_pipeline.services.training import close_unfinished_runs


def add_training_runs(settings, rows: list[tuple[str, str]]) -> list[uuid.UUID]:
    """One user and a training_runs row per (dagster run id, status); their ids."""
    with session_scope(settings.database_url) as session:
        user = User(external_id=f"user-{uuid.uuid4().hex[:6]}", display_name="Test Person")
        session.add(user)
        session.flush()
        runs = [TrainingRun(user_id=user.id, dagster_run_id=run_id, status=status,
                            base_model="local-tiny")
                for run_id, status in rows]
        session.add_all(runs)
        session.flush()
        return [r.id for r in runs]


def statuses(settings) -> dict[uuid.UUID, tuple[str, str | None, bool]]:
    with session_scope(settings.database_url) as session:
        return {r.id: (r.status, r.error, r.finished_at is not None)
                for r in session.scalars(select(TrainingRun))}


def test_only_the_runs_unfinished_rows_are_closed(settings):
    running, pending, done, elsewhere = add_training_runs(settings, [
        ("run-a", "running"), ("run-a", "pending"), ("run-a", "completed"),
        ("run-b", "running")])

    assert close_unfinished_runs(settings, "run-a", "failed", "worker killed") == 2
    after = statuses(settings)
    assert after[running] == after[pending] == ("failed", "worker killed", True)
    assert after[done] == ("completed", None, False)  # a final row keeps its outcome
    assert after[elsewhere] == ("running", None, False)  # another Dagster run's row

    assert close_unfinished_runs(settings, "run-a", "cancelled", "again") == 0  # idempotent
    assert statuses(settings)[running][0] == "failed"
    assert close_unfinished_runs(settings, "run-b", "cancelled", "stopped") == 1
    assert statuses(settings)[elsewhere] == ("cancelled", "stopped", True)


def test_only_final_statuses_can_be_set(settings):
    with pytest.raises(ValueError, match="'failed' or 'cancelled'"):
        close_unfinished_runs(settings, "run-a", "completed", "")


def test_latest_metrics_is_the_newest_step_of_that_run(settings):
    from clone_pipeline.services.training import latest_metrics, metrics_after, record_metrics

    mine, other = add_training_runs(settings, [("run-a", "running"), ("run-b", "running")])
    assert latest_metrics(settings, mine) is None
    record_metrics(settings, mine, "run-a", [{"step": s, "loss": 5.0 - s} for s in (1, 3, 2)])
    record_metrics(settings, other, "run-b", [{"step": 9, "loss": 0.1}])
    newest = latest_metrics(settings, mine)
    assert newest["step"] == 3 and newest["loss"] == 2.0
    assert newest == metrics_after(settings, mine, -1)[-1]
