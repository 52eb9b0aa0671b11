"""Who is calling: every authenticated route takes ``who: Who`` (401 without a valid token,
429 over the rate limit)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from clone_pipeline.services.tokens import Principal
from clone_pipeline.serving.errors import unauthorized


async def _principal(request: Request) -> Principal:
    return await request.app.state.gateway.principal(request)


Who = Annotated[Principal, Depends(_principal)]


def bearer_token(header: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else None."""
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


async def _authorization(request: Request) -> str:
    token = bearer_token(request.headers.get("authorization", ""))
    if token is None:  # refused before the body is read
        raise unauthorized()
    return token


# The bearer token (not yet checked), for a route that checks it itself
# (Gateway.authorize) in the same worker-thread hop as its other lookups.
Authorization = Annotated[str, Depends(_authorization)]
