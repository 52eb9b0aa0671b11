"""api_tokens: bearer tokens of the HTTP API, stored as SHA-256 digests only."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import bindparam, or_, select
from sqlalchemy.orm import Session

from clone_pipeline.db.models import ApiToken, User, utcnow


def add(session: Session, user_id: uuid.UUID | None, name: str, token_hash: str, prefix: str,
        admin: bool, expires_at: datetime | None) -> ApiToken:
    row = ApiToken(user_id=user_id, name=name, token_hash=token_hash, prefix=prefix,
                   admin=admin, expires_at=expires_at)
    session.add(row)
    session.flush()
    return row


# Built once: the gateway checks a token on every request, and building the statement cost
# more than running it.
_VALID = (select(ApiToken, User.external_id).outerjoin(User, User.id == ApiToken.user_id)
          .where(ApiToken.token_hash == bindparam("token_hash"), ApiToken.revoked_at.is_(None),
                 or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > bindparam("now"))))


def valid(session: Session, token_hash: str) -> tuple[ApiToken, str | None] | None:
    """The unrevoked, unexpired token with this digest and its user's external id."""
    found = session.execute(_VALID, {"token_hash": token_hash, "now": utcnow()}).first()
    return None if found is None else (found[0], found[1])


def listing(session: Session) -> list[tuple[ApiToken, str | None]]:
    return list(session.execute(
        select(ApiToken, User.external_id).outerjoin(User, User.id == ApiToken.user_id)
        .order_by(ApiToken.created_at)))


def revoke(session: Session, prefix_or_id: str) -> int:
    """Revoke the tokens whose id or displayed prefix is *prefix_or_id*; returns how many."""
    try:
        match = ApiToken.id == uuid.UUID(prefix_or_id)
    except ValueError:
        match = ApiToken.prefix == prefix_or_id
    rows = list(session.scalars(select(ApiToken).where(match, ApiToken.revoked_at.is_(None))))
    for row in rows:
        row.revoked_at = utcnow()
    session.flush()
    return len(rows)
