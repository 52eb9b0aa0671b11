"""Bearer tokens of the HTTP API: create, check, list, revoke.

A token is shown once, when created; only its SHA-256 is stored (tokens are 256 random bits,
so a plain digest is enough: there is nothing to brute-force). A user token reaches that
user's deployments, an admin token everyone's.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from clone_pipeline.db import tokens, users
from clone_pipeline.db.models import utcnow
from clone_pipeline.db.session import session_scope
from clone_pipeline.settings import Settings

TOKEN_PREFIX = "cpk_"


@dataclass(frozen=True)
class Principal:
    """Who a request is from."""

    token_id: uuid.UUID
    user_id: uuid.UUID | None  # None for an admin token
    external_id: str | None
    admin: bool

    def may_see(self, user_id: uuid.UUID) -> bool:
        return self.admin or self.user_id == user_id


@dataclass(frozen=True)
class TokenInfo:
    id: uuid.UUID
    prefix: str
    name: str
    user: str | None
    admin: bool
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(settings: Settings, external_id: str | None, admin: bool = False,
                 name: str | None = None, expires_in_days: float | None = None
                 ) -> tuple[str, TokenInfo]:
    """A new token for *external_id* (or an admin token); returns it once, with its record."""
    if external_id is None and not admin:
        raise ValueError("a token belongs to a user (give one) or is an admin token (--admin)")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
    with session_scope(settings.database_url) as session:
        user_id = users.user_id_of(session, external_id) if external_id else None
        row = tokens.add(session, user_id, name or ("admin" if admin else external_id),
                         digest(token), token[:12], admin, expires)
        return token, TokenInfo(row.id, row.prefix, row.name, external_id, row.admin,
                                row.created_at, row.expires_at, None)


def authenticate(settings: Settings, token: str | None) -> Principal | None:
    """The principal of a valid (known, unrevoked, unexpired) token, else None."""
    if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    with session_scope(settings.database_url) as session:
        found = tokens.valid(session, digest(token))
        if found is None:
            return None
        row, external_id = found
        return Principal(row.id, row.user_id, external_id, row.admin)


def list_tokens(settings: Settings) -> list[TokenInfo]:
    with session_scope(settings.database_url) as session:
        return [TokenInfo(r.id, r.prefix, r.name, ext, r.admin, r.created_at, r.expires_at,
                          r.revoked_at) for r, ext in tokens.listing(session)]


def revoke_token(settings: Settings, prefix_or_id: str) -> int:
    """Revoke by the prefix `clone-pipeline token list` shows, or by id; returns how many."""
    with session_scope(settings.database_url) as session:
        return tokens.revoke(session, prefix_or_id)
