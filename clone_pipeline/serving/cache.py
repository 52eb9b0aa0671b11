"""The response cache: deterministic answers only, keyed by user, deployment and adapter.

A request is cached only when its answer is reproducible (temperature 0, or a seed). The key
hashes the owner, the deployment, the adapter name (new on every update) and its weights'
digest with the request, so no answer crosses users or outlives an update. In memory by
default; Redis (``CLONE_CACHE_URL``) when the gateway runs as several replicas.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from typing import Any


def is_deterministic(request: dict[str, Any]) -> bool:
    return request.get("temperature") == 0 or request.get("seed") is not None


def cache_key(owner: str, deployment: str, adapter: str, adapter_sha: str | None,
              request: dict[str, Any]) -> str:
    blob = json.dumps([owner, deployment, adapter, adapter_sha, request], sort_keys=True,
                      separators=(",", ":"), default=str)
    return "clone:answer:" + hashlib.sha256(blob.encode()).hexdigest()


class MemoryCache:
    def __init__(self, max_entries: int = 4096, ttl_s: float = 3600):
        self.max_entries, self.ttl_s = max_entries, ttl_s
        self._items: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    async def get(self, key: str) -> bytes | None:
        with self._lock:
            found = self._items.get(key)
            if found is None or found[0] < time.monotonic():
                self._items.pop(key, None)
                return None
            self._items.move_to_end(key)
            return found[1]

    async def set(self, key: str, value: bytes) -> None:
        with self._lock:
            self._items[key] = (time.monotonic() + self.ttl_s, value)
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    async def close(self) -> None:
        pass


class RedisCache:
    def __init__(self, url: str, ttl_s: int = 3600):
        from redis import asyncio as aioredis

        self._redis = aioredis.from_url(url)
        self.ttl_s = ttl_s

    async def get(self, key: str) -> bytes | None:
        return await self._redis.get(key)

    async def set(self, key: str, value: bytes) -> None:
        await self._redis.set(key, value, ex=self.ttl_s)

    async def close(self) -> None:
        await self._redis.aclose()


def make_cache(url: str | None):
    return RedisCache(url) if url else MemoryCache()
