"""The source tables (responses, life stories, milestone messages, voice recordings): a
user's material as imported, read for the pipeline and upserted by imports."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from clone_pipeline.db.models import (
    SOURCE_MODELS,
    LifeStory,
    MilestoneMessage,
    Response,
    User,
    VoiceRecording,
    utcnow,
)
from clone_pipeline.db.users import as_utc, get_user


@dataclass(frozen=True)
class StoredMaterial:
    """A user's profile and written material as plain values, oldest item first."""

    user_id: uuid.UUID
    external_id: str
    display_name: str
    persona: dict[str, Any]
    birth_year: int | None
    responses: list[dict[str, Any]]
    life_stories: list[dict[str, Any]]
    milestone_messages: list[dict[str, Any]]


def load_material(session: Session, external_id: str) -> StoredMaterial:
    user = get_user(session, external_id)

    def rows(model, *columns: str) -> list[dict[str, Any]]:
        result = session.scalars(select(model).where(model.user_id == user.id)
                                 .order_by(model.created_at, model.item_id))
        return [{c: getattr(r, c) for c in ("item_id", *columns)} for r in result]

    return StoredMaterial(
        user_id=user.id, external_id=user.external_id, display_name=user.display_name,
        persona=dict(user.persona or {}), birth_year=user.birth_year,
        responses=rows(Response, "category", "question", "answer", "emotional_tone"),
        life_stories=rows(LifeStory, "title", "category", "era", "content"),
        milestone_messages=rows(MilestoneMessage, "recipient", "occasion", "content"),
    )


def recordings(session: Session, user_id: uuid.UUID) -> list[VoiceRecording]:
    return list(session.scalars(select(VoiceRecording).where(VoiceRecording.user_id == user_id)
                                .order_by(VoiceRecording.item_id)))


def recording(session: Session, user_id: uuid.UUID, item_id: str) -> VoiceRecording | None:
    """The user's recording with export id *item_id* (ids are unique per user only)."""
    return session.scalar(select(VoiceRecording).where(VoiceRecording.user_id == user_id,
                                                       VoiceRecording.item_id == item_id))


def referenced_audio(session: Session, paths: list[str]) -> set[str]:
    """Which of *paths* (relative to the data root) committed recordings point at."""
    return set(session.scalars(select(VoiceRecording.file_path)
                               .where(VoiceRecording.file_path.in_(paths))))


@dataclass
class ListCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    pruned: int = 0


@dataclass
class UpsertOutcome:
    user_created: bool
    lists: dict[str, ListCounts] = field(default_factory=dict)


def upsert_material(session: Session, external_id: str, user_values: dict[str, Any],
                    items: dict[str, list[tuple[str, dict[str, Any]]]],
                    prune: bool) -> UpsertOutcome:
    """Insert or update a user and their items (list name -> [(item id, column values)]);
    unchanged rows keep their updated_at; with *prune*, items not given are deleted."""
    lock_user(session, external_id)
    now = utcnow()
    user = session.scalar(select(User).where(User.external_id == external_id))
    outcome = UpsertOutcome(user_created=user is None)
    if user is None:
        user = User(external_id=external_id, created_at=now, updated_at=now, **user_values)
        session.add(user)
        session.flush()
    elif _assign(user, user_values):
        user.updated_at = now
    for list_name, model in SOURCE_MODELS.items():
        counts = outcome.lists.setdefault(list_name, ListCounts())
        existing = {row.item_id: row for row in
                    session.scalars(select(model).where(model.user_id == user.id))}
        seen: set[str] = set()
        for item_id, values in items.get(list_name, []):
            seen.add(item_id)
            row = existing.get(item_id)
            if row is None:
                session.add(model(user_id=user.id, item_id=item_id, updated_at=now,
                                  **{"created_at": now, **values}))
                counts.inserted += 1
            elif _assign(row, values):
                row.updated_at = now
                counts.updated += 1
            else:
                counts.unchanged += 1
        if prune:
            for item_id, row in existing.items():
                if item_id not in seen:
                    session.delete(row)
                    counts.pruned += 1
    if prune and any(c.pruned for c in outcome.lists.values()):
        user.updated_at = now  # so the change sensor sees a user whose material shrank
    return outcome


def lock_user(session: Session, external_id: str) -> None:
    """Serialise writers of one user until this transaction ends, so two imports of the same
    new user cannot both see "no such user" and both insert it. PostgreSQL: a transaction
    advisory lock on the id; SQLite: the database write lock, taken now (BEGIN IMMEDIATE)
    rather than at the first write. Must be the transaction's first statement."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:id))"),
                        {"id": external_id})
    elif dialect == "sqlite":
        session.execute(text("BEGIN IMMEDIATE"))


def _assign(row: Any, values: dict[str, Any]) -> bool:
    """Set changed attributes on *row*; return whether anything changed."""
    changed = False
    for key, value in values.items():
        current = getattr(row, key)
        if isinstance(current, datetime) and isinstance(value, datetime):
            same = as_utc(current) == as_utc(value)
        else:
            same = current == value
        if not same:
            setattr(row, key, value)
            changed = True
    return changed
