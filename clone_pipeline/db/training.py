"""training_runs, training_metrics and model_versions: fine-tuning runs and what they made."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from clone_pipeline.db.models import ModelVersion, TrainingMetric, TrainingRun, User, utcnow
from clone_pipeline.db.statuses import (
    UNFINISHED_TRAINING,
    ModelVersionStatus,
    TrainingRunStatus,
)

METRIC_COLUMNS = ("step", "epoch", "loss", "eval_loss", "learning_rate", "grad_norm",
                  "tokens_per_second", "percent_complete", "eta_seconds", "gpu_utilization",
                  "vram_used_mb", "gpu_temperature_c")


def add_run(session: Session, **values) -> TrainingRun:
    row = TrainingRun(started_at=utcnow(), **values)
    session.add(row)
    session.flush()
    return row


def get_run(session: Session, run_id: uuid.UUID) -> TrainingRun | None:
    return session.get(TrainingRun, run_id)


def finish_run(session: Session, run_id: uuid.UUID, status: TrainingRunStatus,
               hardware: dict[str, Any] | None = None, error: str | None = None) -> None:
    row = session.get(TrainingRun, run_id)
    row.status, row.finished_at, row.error = status, utcnow(), error
    if hardware:
        row.hardware = hardware


def close_unfinished_runs(session: Session, dagster_run_id: str, status: TrainingRunStatus,
                          error: str) -> int:
    """Mark the rows *dagster_run_id* left pending or running as *status*; returns how many."""
    result = session.execute(
        update(TrainingRun)
        .where(TrainingRun.dagster_run_id == dagster_run_id,
               TrainingRun.status.in_(UNFINISHED_TRAINING))
        .values(status=status, error=error[:2000], finished_at=utcnow()))
    return result.rowcount


def find_run(session: Session, run_id: str) -> tuple[TrainingRun, str] | None:
    """(run, user's external id) by the run's own id or the Dagster run id that launched it."""
    try:
        row = session.get(TrainingRun, uuid.UUID(run_id))
    except ValueError:  # not a UUID: a Dagster run id
        row = None
    row = row or session.scalar(select(TrainingRun).where(
        TrainingRun.dagster_run_id == run_id).order_by(TrainingRun.created_at.desc()))
    if row is None:
        return None
    return row, session.get(User, row.user_id).external_id


def add_metrics(session: Session, run_id: uuid.UUID, dagster_run_id: str | None,
                metrics: list[dict[str, Any]]) -> None:
    session.add_all(TrainingMetric(training_run_id=run_id, dagster_run_id=dagster_run_id,
                                   **{c: m.get(c) for c in METRIC_COLUMNS}) for m in metrics)


def metrics_after(session: Session, run_id: uuid.UUID, step: int) -> list[dict[str, Any]]:
    """training_metrics rows of *run_id* with a step above *step*, in order."""
    rows = session.scalars(select(TrainingMetric).where(
        TrainingMetric.training_run_id == run_id, TrainingMetric.step > step)
        .order_by(TrainingMetric.step))
    return [{c: getattr(r, c) for c in METRIC_COLUMNS} for r in rows]


def latest_metrics(session: Session, run_id: uuid.UUID) -> dict[str, Any] | None:
    """The newest training_metrics row of *run_id* (one indexed row, however long the run)."""
    row = session.scalars(select(TrainingMetric).where(
        TrainingMetric.training_run_id == run_id).order_by(TrainingMetric.step.desc())
        .limit(1)).first()
    return {c: getattr(row, c) for c in METRIC_COLUMNS} if row else None


def add_model_version(session: Session, run_id: uuid.UUID, dagster_run_id: str | None,
                      adapter_path: str, adapter_sha256: str,
                      metrics: dict[str, Any]) -> ModelVersion:
    """The next version number of the run's user, recorded as trained."""
    run = session.get(TrainingRun, run_id)
    top = session.scalar(select(func.max(ModelVersion.version))
                         .where(ModelVersion.user_id == run.user_id))
    row = ModelVersion(user_id=run.user_id, training_run_id=run.id,
                       dagster_run_id=dagster_run_id, version=(top or 0) + 1,
                       base_model=run.base_model, adapter_path=adapter_path,
                       adapter_sha256=adapter_sha256, status=ModelVersionStatus.TRAINED,
                       metrics=metrics)
    session.add(row)
    session.flush()
    return row


def get_version(session: Session, version_id: uuid.UUID) -> ModelVersion | None:
    return session.get(ModelVersion, version_id)


def latest_version(session: Session, user_id: uuid.UUID) -> ModelVersion | None:
    return session.scalar(select(ModelVersion).where(ModelVersion.user_id == user_id)
                          .order_by(ModelVersion.version.desc()).limit(1))


def store_evaluation(session: Session, version_id: uuid.UUID,
                     evaluation: dict[str, Any]) -> ModelVersion:
    row = session.get(ModelVersion, version_id)
    row.metrics = {**row.metrics, "evaluation": evaluation}
    row.status = ModelVersionStatus.EVALUATED
    store_heldout_perplexity(session, version_id, evaluation["heldout"],
                             evaluation["adapter_perplexity"])
    return row


def store_heldout_perplexity(session: Session, version_id: uuid.UUID, heldout: str,
                             perplexity: float) -> None:
    """Record the version's answer perplexity on the held-out set *heldout* (its key), so a
    later candidate evaluated on the same questions is compared without re-evaluating."""
    row = session.get(ModelVersion, version_id)
    row.metrics = {**row.metrics, "heldout_perplexity": {
        **row.metrics.get("heldout_perplexity", {}), heldout: perplexity}}
    session.flush()


def versions_of(session: Session, user_id: uuid.UUID) -> list[ModelVersion]:
    return list(session.scalars(select(ModelVersion).where(ModelVersion.user_id == user_id)
                                .order_by(ModelVersion.version)))


def version_number(session: Session, user_id: uuid.UUID, number: int) -> ModelVersion | None:
    return session.scalar(select(ModelVersion).where(ModelVersion.user_id == user_id,
                                                     ModelVersion.version == number))


def versions_trained_in(session: Session, dagster_run_id: str) -> list[ModelVersion]:
    return list(session.scalars(select(ModelVersion)
                                .where(ModelVersion.dagster_run_id == dagster_run_id)
                                .order_by(ModelVersion.version)))


def current_version(session: Session, user_id: uuid.UUID) -> ModelVersion | None:
    """The user's current version: the one promoted last (None before any promotion)."""
    return session.scalar(select(ModelVersion)
                          .where(ModelVersion.user_id == user_id,
                                 ModelVersion.promoted_at.is_not(None))
                          .order_by(ModelVersion.promoted_at.desc()).limit(1))


def promote(session: Session, version_id: uuid.UUID, note: str) -> None:
    """Make *version_id* its user's current version, saying why."""
    row = session.get(ModelVersion, version_id)
    row.promoted_at, row.promotion_note = utcnow(), note
    session.flush()


def note_kept(session: Session, version_id: uuid.UUID, note: str) -> None:
    """Record why *version_id* was not promoted."""
    session.get(ModelVersion, version_id).promotion_note = note
    session.flush()


# ----------------------------------------------------------------------- housekeeping

def finished_unarchived_runs(session: Session) -> list[TrainingRun]:
    """Runs that have ended and still have their files, oldest first."""
    return list(session.scalars(
        select(TrainingRun).where(TrainingRun.status.not_in(UNFINISHED_TRAINING),
                                  TrainingRun.archived_at.is_(None))
        .order_by(TrainingRun.finished_at)))


def all_versions(session: Session) -> list[ModelVersion]:
    return list(session.scalars(select(ModelVersion).order_by(ModelVersion.user_id,
                                                               ModelVersion.version)))


def mark_archived(session: Session, row: TrainingRun | ModelVersion) -> None:
    row.archived_at = utcnow()
    session.flush()


def thin_metrics(session: Session, run_id: uuid.UUID, keep: int) -> int:
    """Keep about *keep* evenly spaced training_metrics rows of a run (its first and last
    step and every row with an eval loss too); returns how many rows were deleted."""
    steps = list(session.execute(select(TrainingMetric.id, TrainingMetric.step,
                                        TrainingMetric.eval_loss)
                                 .where(TrainingMetric.training_run_id == run_id)
                                 .order_by(TrainingMetric.step)))
    if len(steps) <= keep:
        return 0
    stride = -(-len(steps) // keep)  # ceiling division
    kept = {row.id for i, row in enumerate(steps)
            if i % stride == 0 or i == len(steps) - 1 or row.eval_loss is not None}
    doomed = [row.id for row in steps if row.id not in kept]
    for start in range(0, len(doomed), 500):
        session.execute(delete(TrainingMetric).where(
            TrainingMetric.id.in_(doomed[start:start + 500])))
    return len(doomed)
