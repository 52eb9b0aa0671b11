"""training_datasets and formatted_training_data: what the data stages produced."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clone_pipeline.db.models import FormattedTrainingData, TrainingDataset


def latest_dataset(session: Session, user_id: uuid.UUID) -> TrainingDataset | None:
    return session.scalar(select(TrainingDataset).where(TrainingDataset.user_id == user_id)
                          .order_by(TrainingDataset.created_at.desc(),
                                    TrainingDataset.version.desc()).limit(1))


def dataset_version_for(session: Session, user_id: uuid.UUID, sha256: str) -> int:
    """Same content keeps its version number; new content gets the next one."""
    same = session.scalar(select(TrainingDataset.version).where(
        TrainingDataset.user_id == user_id, TrainingDataset.sha256 == sha256).limit(1))
    if same is not None:
        return same
    top = session.scalar(select(func.max(TrainingDataset.version))
                         .where(TrainingDataset.user_id == user_id))
    return (top or 0) + 1


def add_dataset(session: Session, **values) -> TrainingDataset:
    row = TrainingDataset(**values)
    session.add(row)
    session.flush()
    return row


def add_formatted(session: Session, rows: list[dict]) -> None:
    session.add_all(FormattedTrainingData(**values) for values in rows)


def latest_formatted(session: Session, dataset_id: uuid.UUID,
                     fmt: str) -> FormattedTrainingData | None:
    """The newest rendering of a dataset in one format."""
    return session.scalar(select(FormattedTrainingData).where(
        FormattedTrainingData.dataset_id == dataset_id, FormattedTrainingData.format == fmt)
        .order_by(FormattedTrainingData.created_at.desc()).limit(1))


def latest_formatted_summary(session: Session, user_id: uuid.UUID) -> dict[str, int] | None:
    """Train/eval example counts, number of formats and dataset version of the user's latest
    formatting run."""
    latest = session.scalar(select(FormattedTrainingData)
                            .where(FormattedTrainingData.user_id == user_id)
                            .order_by(FormattedTrainingData.created_at.desc()).limit(1))
    if latest is None:
        return None
    formats = session.scalar(select(func.count()).select_from(FormattedTrainingData).where(
        FormattedTrainingData.dataset_id == latest.dataset_id,
        FormattedTrainingData.dagster_run_id == latest.dagster_run_id))
    dataset = session.get(TrainingDataset, latest.dataset_id)
    return {"train": latest.train_count, "eval": latest.eval_count, "formats": formats,
            "dataset_version": dataset.version}


def datasets_of_run(session: Session, dagster_run_id: str) -> list[TrainingDataset]:
    return list(session.scalars(select(TrainingDataset).where(
        TrainingDataset.dagster_run_id == dagster_run_id)))


def formatted_of_run(session: Session, dagster_run_id: str
                     ) -> list[tuple[FormattedTrainingData, int]]:
    """(formatted rows, their dataset's version) a run wrote, by format."""
    return list(session.execute(
        select(FormattedTrainingData, TrainingDataset.version)
        .join(TrainingDataset, TrainingDataset.id == FormattedTrainingData.dataset_id)
        .where(FormattedTrainingData.dagster_run_id == dagster_run_id)
        .order_by(FormattedTrainingData.format)))
