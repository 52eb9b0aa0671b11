"""The users table: lookups, the overview, removal and change tracking of source items."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import func, select, union_all
from sqlalchemy.orm import Session

from clone_pipeline.db.models import SOURCE_MODELS, Base, User


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


def user_id_of(session: Session, external_id: str) -> uuid.UUID:
    return get_user(session, external_id).id


def external_id_of(session: Session, user_id: uuid.UUID) -> str:
    return session.get(User, user_id).external_id


def names_of(session: Session, user_id: uuid.UUID) -> tuple[str, str]:
    """(external id, display name) of the user *user_id*."""
    user = session.get(User, user_id)
    return user.external_id, user.display_name


def all_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.external_id)))


def all_external_ids(session: Session) -> set[str]:
    return set(session.scalars(select(User.external_id)))


def item_counts(session: Session, user_id: uuid.UUID) -> dict[str, int]:
    """Number of stored items per source list."""
    return {name: session.scalar(select(func.count()).select_from(model)
                                 .where(model.user_id == user_id))
            for name, model in SOURCE_MODELS.items()}


def delete_user(session: Session, external_id: str) -> None:
    """Remove a user and (by cascade) every row stored about them in the domain tables."""
    session.delete(get_user(session, external_id))


def tables_with_user_rows() -> list[str]:
    """Every domain table that can hold a user's rows (all of them, users included)."""
    return [table.name for table in Base.metadata.sorted_tables]


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
    return {ext: as_utc(ts) for ext, ts in session.execute(query)}


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes even for timezone-aware columns."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
