"""model_deployments and inference_logs: what is served, and how each request went."""

from __future__ import annotations

import uuid
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from clone_pipeline.db.models import InferenceLog, ModelDeployment, ModelVersion, User, utcnow
from clone_pipeline.db.statuses import DeploymentStatus

LOG_COLUMNS = ("deployment_id", "user_id", "prompt_tokens", "completion_tokens", "latency_ms",
               "ttft_ms", "cached", "status", "error")


def add(session: Session, **values: Any) -> ModelDeployment:
    row = ModelDeployment(**values)
    session.add(row)
    session.flush()
    return row


def get(session: Session, deployment_id: uuid.UUID) -> ModelDeployment | None:
    return session.get(ModelDeployment, deployment_id)


def live(session: Session, user_id: uuid.UUID | None = None) -> list[ModelDeployment]:
    """Deployments not deleted (every user's when *user_id* is None), oldest first."""
    query = select(ModelDeployment).where(ModelDeployment.deleted_at.is_(None))
    if user_id is not None:
        query = query.where(ModelDeployment.user_id == user_id)
    return list(session.scalars(query.order_by(ModelDeployment.created_at)))


def active(session: Session) -> list[tuple[ModelDeployment, ModelVersion]]:
    """Every active deployment with its model version (what a restarted engine reloads)."""
    return list(session.execute(
        select(ModelDeployment, ModelVersion)
        .join(ModelVersion, ModelVersion.id == ModelDeployment.model_version_id)
        .where(ModelDeployment.status == DeploymentStatus.ACTIVE,
               ModelDeployment.deleted_at.is_(None))
        .order_by(ModelDeployment.created_at)))


def interrupted(session: Session) -> list[ModelDeployment]:
    """Deployments left half-way (``deploying``) by a process that stopped."""
    return list(session.scalars(select(ModelDeployment).where(
        ModelDeployment.status == DeploymentStatus.DEPLOYING,
        ModelDeployment.deleted_at.is_(None))))


def resolve(session: Session, model: str, user_id: uuid.UUID | None
            ) -> list[tuple[ModelDeployment, ModelVersion, str, str]]:
    """Live deployments whose id or name is *model*, with version and owner's external id and
    display name; only *user_id*'s unless None (an admin)."""
    try:
        key: Any = uuid.UUID(model)
    except ValueError:
        key = model
    params = {"key": key} | ({} if user_id is None else {"user_id": user_id})
    return list(session.execute(_resolve_query(isinstance(key, uuid.UUID), user_id is not None),
                                params))


@lru_cache(maxsize=4)
def _resolve_query(by_id: bool, one_user: bool):
    """Built once per shape: the gateway resolves a deployment on every request."""
    query = (select(ModelDeployment, ModelVersion, User.external_id, User.display_name)
             .join(ModelVersion, ModelVersion.id == ModelDeployment.model_version_id)
             .join(User, User.id == ModelDeployment.user_id)
             .where(ModelDeployment.deleted_at.is_(None),
                    (ModelDeployment.id if by_id else ModelDeployment.name)
                    == bindparam("key")))
    if one_user:
        query = query.where(ModelDeployment.user_id == bindparam("user_id"))
    return query


def mark(session: Session, deployment_id: uuid.UUID, status: DeploymentStatus,
         error: str | None = None, **values: Any) -> ModelDeployment:
    row = session.get(ModelDeployment, deployment_id)
    row.status, row.error = status, error
    for name, value in values.items():
        setattr(row, name, value)
    if status == DeploymentStatus.STOPPED and row.deleted_at is None:
        row.deleted_at = utcnow()
    session.flush()
    return row


def add_logs(session: Session, logs: list[dict[str, Any]]) -> None:
    session.add_all(InferenceLog(**{c: log.get(c) for c in LOG_COLUMNS if c in log})
                    for log in logs)


def logs_of(session: Session, deployment_id: uuid.UUID) -> list[InferenceLog]:
    return list(session.scalars(select(InferenceLog)
                                .where(InferenceLog.deployment_id == deployment_id)
                                .order_by(InferenceLog.created_at)))
