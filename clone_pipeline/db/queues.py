"""training_queues: the admin queues on the shared GPUs."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from clone_pipeline.db.models import TrainingQueue


def add(session: Session, **values) -> TrainingQueue:
    row = TrainingQueue(**values)
    session.add(row)
    session.flush()
    return row


def by_name(session: Session, name: str) -> TrainingQueue | None:
    return session.scalars(select(TrainingQueue).where(TrainingQueue.name == name)).first()


def listing(session: Session) -> list[TrainingQueue]:
    return list(session.scalars(select(TrainingQueue).order_by(TrainingQueue.name)))


def remove(session: Session, row: TrainingQueue) -> None:
    session.delete(row)
