"""Queries and writes the pipeline needs, kept in one place so SQL never leaks upward."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, union_all
from sqlalchemy.orm import Session

from clone_pipeline.data.collect import SourceMaterial
from clone_pipeline.db.models import (
    SOURCE_MODELS,
    FormattedTrainingData,
    LifeStory,
    MilestoneMessage,
    ModelVersion,
    Response,
    TrainingDataset,
    User,
    VoiceLlmIntegration,
    VoiceProfile,
)


class UnknownUserError(LookupError):
    def __init__(self, external_id: str):
        super().__init__(f"no user {external_id!r}: import their export first "
                         f"(clone-pipeline import PATH)")
        self.external_id = external_id


def get_user(session: Session, external_id: str) -> User:
    user = session.scalar(select(User).where(User.external_id == external_id))
    if user is None:
        raise UnknownUserError(external_id)
    return user


def load_source_material(session: Session, external_id: str) -> SourceMaterial:
    """The user's responses, stories and messages as plain dicts, oldest first."""
    user = get_user(session, external_id)

    def rows(model, *columns: str) -> list[dict[str, Any]]:
        result = session.scalars(select(model).where(model.user_id == user.id)
                                 .order_by(model.created_at, model.item_id))
        return [{c: getattr(r, c) for c in ("item_id", *columns)} for r in result]

    return SourceMaterial(
        external_id=user.external_id, display_name=user.display_name,
        persona=user.persona or {}, birth_year=user.birth_year,
        responses=rows(Response, "category", "question", "answer", "emotional_tone"),
        life_stories=rows(LifeStory, "title", "category", "era", "content"),
        milestone_messages=rows(MilestoneMessage, "recipient", "occasion", "content"),
    )


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


def latest_formatted_summary(session: Session, external_id: str) -> dict[str, int] | None:
    """Train/eval example counts and number of formats of the user's latest formatting run."""
    user = get_user(session, external_id)
    latest = session.scalar(select(FormattedTrainingData)
                            .where(FormattedTrainingData.user_id == user.id)
                            .order_by(FormattedTrainingData.created_at.desc()).limit(1))
    if latest is None:
        return None
    rows = session.scalars(select(FormattedTrainingData).where(
        FormattedTrainingData.dataset_id == latest.dataset_id,
        FormattedTrainingData.dagster_run_id == latest.dagster_run_id)).all()
    return {"train": latest.train_count, "eval": latest.eval_count, "formats": len(rows)}


def latest_evaluation(session: Session, external_id: str) -> dict[str, Any] | None:
    """The evaluation figures of the user's newest model version, with its version number."""
    user = get_user(session, external_id)
    version = session.scalar(select(ModelVersion).where(ModelVersion.user_id == user.id)
                             .order_by(ModelVersion.version.desc()).limit(1))
    if version is None or "evaluation" not in (version.metrics or {}):
        return None
    return {"version": version.version, **version.metrics["evaluation"]}


def latest_row(session: Session, model, user_id: uuid.UUID, status: str | None = None):
    """The user's newest row of a pipeline table (optionally with the given status)."""
    query = select(model).where(model.user_id == user_id)
    if status is not None:
        query = query.where(model.status == status)
    return session.scalars(query.order_by(model.created_at.desc()).limit(1)).first()


def latest_voice(session: Session, external_id: str) -> dict[str, Any] | None:
    """The user's newest voice profile and integration figures (None if never profiled)."""
    profile = latest_row(session, VoiceProfile, get_user(session, external_id).id)
    if profile is None:
        return None
    integration = session.scalar(
        select(VoiceLlmIntegration).where(VoiceLlmIntegration.voice_profile_id == profile.id)
        .order_by(VoiceLlmIntegration.created_at.desc()).limit(1))
    return {"status": profile.status, "profile": dict(profile.profile),
            "quality": dict(profile.quality),
            "integration": None if integration is None else {
                "status": integration.status,
                "alignment_accuracy": integration.alignment_accuracy,
                "emotional_consistency": integration.emotional_consistency}}


def users_overview(session: Session) -> list[dict[str, Any]]:
    """Every user with item counts and the readiness of their latest dataset."""
    out = []
    for user in session.scalars(select(User).order_by(User.external_id)):
        counts = {name: session.scalar(select(func.count()).select_from(model)
                                       .where(model.user_id == user.id))
                  for name, model in SOURCE_MODELS.items()}
        dataset = latest_dataset(session, user.id)
        out.append({"external_id": user.external_id, "display_name": user.display_name,
                    **counts,
                    "dataset_version": dataset.version if dataset else None,
                    "ready": dataset.ready if dataset else None,
                    "quality": dataset.quality_metrics if dataset else None,
                    "readiness": dataset.readiness if dataset else None})
    return out


def source_changes_since(session: Session, since: datetime | None,
                         tables: tuple[str, ...] | None = None) -> dict[str, datetime]:
    """external_id -> latest updated_at across the user and their items (or only the
    *tables* named), for users changed after *since* (all users when None)."""
    models = SOURCE_MODELS.values() if tables is None else [SOURCE_MODELS[t] for t in tables]
    parts = [] if tables else [select(User.id.label("user_id"), User.updated_at.label("ts"))]
    parts += [select(m.user_id.label("user_id"), m.updated_at.label("ts")) for m in models]
    changes = union_all(*parts).subquery()
    query = (select(User.external_id, func.max(changes.c.ts))
             .join(changes, changes.c.user_id == User.id).group_by(User.external_id))
    if since is not None:
        query = query.having(func.max(changes.c.ts) > since)
    return {ext: _utc(ts) for ext, ts in session.execute(query)}


def all_external_ids(session: Session) -> set[str]:
    return set(session.scalars(select(User.external_id)))


def delete_user(session: Session, external_id: str) -> None:
    """Remove a user and (by cascade) everything stored about them in the domain tables."""
    session.delete(get_user(session, external_id))


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
