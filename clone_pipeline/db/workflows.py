"""training_workflows: one row per launched workflow, its stages and their timings."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from clone_pipeline.db.models import TrainingWorkflow, User
from clone_pipeline.db.statuses import WorkflowStatus

UNFINISHED = (WorkflowStatus.PENDING, WorkflowStatus.RUNNING)


def add(session: Session, **values) -> TrainingWorkflow:
    row = TrainingWorkflow(**values)
    session.add(row)
    session.flush()
    return row


def get(session: Session, workflow_id: uuid.UUID) -> tuple[TrainingWorkflow, str] | None:
    """The workflow and its user's external id."""
    found = session.execute(select(TrainingWorkflow, User.external_id)
                            .join(User, User.id == TrainingWorkflow.user_id)
                            .where(TrainingWorkflow.id == workflow_id)).first()
    return None if found is None else (found[0], found[1])


def by_run(session: Session, dagster_run_id: str) -> TrainingWorkflow | None:
    return session.scalars(select(TrainingWorkflow)
                           .where(TrainingWorkflow.dagster_run_id == dagster_run_id)).first()


def unfinished(session: Session, user_id: uuid.UUID | None = None
               ) -> list[tuple[TrainingWorkflow, str]]:
    """Pending and running workflows (of one user), oldest first."""
    query = (select(TrainingWorkflow, User.external_id)
             .join(User, User.id == TrainingWorkflow.user_id)
             .where(TrainingWorkflow.status.in_(UNFINISHED))
             .order_by(TrainingWorkflow.created_at))
    if user_id is not None:
        query = query.where(TrainingWorkflow.user_id == user_id)
    return [(row, external_id) for row, external_id in session.execute(query)]


def completed_on(session: Session, hardware_profile: str, limit: int = 200
                 ) -> list[TrainingWorkflow]:
    """The newest completed workflows on *hardware_profile*: the history estimates use."""
    return list(session.scalars(
        select(TrainingWorkflow)
        .where(TrainingWorkflow.status == WorkflowStatus.COMPLETED,
               TrainingWorkflow.hardware_profile == hardware_profile)
        .order_by(TrainingWorkflow.created_at.desc()).limit(limit)))
