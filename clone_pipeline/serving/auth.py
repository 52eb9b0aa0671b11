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


async def _authorization(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():  # refused before the body is read
        raise unauthorized()
    return header


# The Authorization header (a bearer token, not yet checked), for a route that checks it
# itself (Gateway.authorize) in the same worker-thread hop as its other lookups.
Authorization = Annotated[str, Depends(_authorization)]
