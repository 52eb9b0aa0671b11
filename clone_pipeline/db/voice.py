"""voice_profiles and voice_llm_integrations: what the voice stages produced."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from clone_pipeline.db.models import VoiceLlmIntegration, VoiceProfile
from clone_pipeline.db.statuses import VoiceIntegrationStatus, VoiceProfileStatus


def add_profile(session: Session, **values) -> None:
    session.add(VoiceProfile(**values))


def add_integration(session: Session, **values) -> None:
    session.add(VoiceLlmIntegration(**values))


def latest_profile(session: Session, user_id: uuid.UUID,
                   status: VoiceProfileStatus | None = None) -> VoiceProfile | None:
    query = select(VoiceProfile).where(VoiceProfile.user_id == user_id)
    if status is not None:
        query = query.where(VoiceProfile.status == status)
    return session.scalar(query.order_by(VoiceProfile.created_at.desc()).limit(1))


def latest_integration(session: Session, user_id: uuid.UUID, *,
                       profile_id: uuid.UUID | None = None,
                       status: VoiceIntegrationStatus | None = None
                       ) -> VoiceLlmIntegration | None:
    query = select(VoiceLlmIntegration).where(VoiceLlmIntegration.user_id == user_id)
    if profile_id is not None:
        query = query.where(VoiceLlmIntegration.voice_profile_id == profile_id)
    if status is not None:
        query = query.where(VoiceLlmIntegration.status == status)
    return session.scalar(query.order_by(VoiceLlmIntegration.created_at.desc()).limit(1))


def integrations_of_run(session: Session, dagster_run_id: str) -> list[VoiceLlmIntegration]:
    return list(session.scalars(select(VoiceLlmIntegration).where(
        VoiceLlmIntegration.dagster_run_id == dagster_run_id)))
