"""JSON errors in the OpenAI shape: ``{"error": {"message", "type", "param", "code"}}``."""

from __future__ import annotations

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


class ApiError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None,
                 kind: str = "invalid_request_error", headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.kind = status, message, param, kind
        self.headers = headers


def error_body(message: str, kind: str, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": None}}


async def api_error_handler(_request: Request, exc: ApiError) -> JSONResponse:
    return JSONResponse(error_body(exc.message, exc.kind, exc.param), status_code=exc.status,
                        headers=exc.headers)


async def http_error_handler(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Starlette's own errors (an unknown path, a wrong method, a body it cannot parse) in
    the same shape as ours."""
    kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
    return JSONResponse(error_body(str(exc.detail), kind), status_code=exc.status_code,
                        headers=exc.headers)


async def validation_handler(_request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 naming the first bad field (``messages.3.content``), as the client sent it."""
    first = exc.errors()[0]
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query")]
    param = ".".join(loc) or None
    if first.get("type") == "json_invalid":
        message = f"the request body is not valid JSON: {first.get('msg')}"
    else:
        message = f"{param or 'request'}: {first.get('msg')}"
    return JSONResponse(error_body(message, "invalid_request_error", param), status_code=422)


# What a client is told to wait while the engine is down: `serve` restarts a crashed engine,
# which takes about half a minute on a small CPU.
ENGINE_RETRY_AFTER_S = 10


def engine_unreachable() -> ApiError:
    return ApiError(503, "the inference engine is not reachable", kind="engine_error",
                    headers={"Retry-After": str(ENGINE_RETRY_AFTER_S)})


def unauthorized() -> ApiError:
    return ApiError(401, "missing, unknown, revoked or expired token: send "
                         "Authorization: Bearer <token> (clone-pipeline token create USER)",
                    kind="authentication_error", headers={"WWW-Authenticate": "Bearer"})


def not_found(what: str, hint: str = "") -> ApiError:
    return ApiError(404, f"{what} not found{'; ' + hint if hint else ''}",
                    kind="not_found_error")
