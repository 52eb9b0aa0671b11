"""The gateway's limits and the per-token rate limiter."""

from __future__ import annotations

import json
import math
import os
import threading
import time
from dataclasses import dataclass

from clone_pipeline.serving.errors import error_body


@dataclass(frozen=True)
class Limits:
    max_messages: int = 64
    max_message_chars: int = 16_000
    max_prompt_chars: int = 32_000  # all messages together
    max_stop: int = 4
    max_body_bytes: int = 1 << 20
    context_tokens: int = 1024  # the engine's max_model_len
    rate_per_minute: int = 600  # requests per token
    request_timeout_s: float = 120.0
    max_speech_chars: int = 2_000

    @classmethod
    def from_env(cls, **overrides) -> Limits:
        env = {"rate_per_minute": int(os.environ.get("CLONE_RATE_LIMIT", cls.rate_per_minute)),
               "request_timeout_s": float(os.environ.get("CLONE_REQUEST_TIMEOUT",
                                                         cls.request_timeout_s))}
        return cls(**{**env, **overrides})


class RateLimiter:
    """A token bucket per API token: *per_minute* requests, refilled continuously."""

    def __init__(self, per_minute: int):
        self.capacity = float(per_minute)
        self.refill = per_minute / 60.0
        self._buckets: dict[object, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: object) -> float:
        """0 if the request may go, else the seconds to wait (for Retry-After)."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.refill)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return max(1.0, math.ceil((1 - tokens) / self.refill))


class BodyLimit:
    """ASGI middleware: a 413 for a body whose Content-Length is over *max_bytes*, before
    it is read. (Plain ASGI: Starlette's ``@app.middleware`` costs every request, cached
    answers included, a task and a queue.)"""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            length = dict(scope["headers"]).get(b"content-length", b"")
            if length.isdigit() and int(length) > self.max_bytes:
                body = json.dumps(error_body(f"the request body is over {self.max_bytes} "
                                             "bytes", "invalid_request_error")).encode()
                await send({"type": "http.response.start", "status": 413, "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
