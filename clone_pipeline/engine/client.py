"""A small synchronous client for the engine's HTTP API (vLLM's OpenAI-compatible server).

Used for what is not on the request path: health, loading and unloading adapters, the
deployment smoke check and the running-request count. The gateway streams requests with its
own asynchronous client built from the same URL and key (``base_url``, ``headers``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx


class EngineError(RuntimeError):
    """The engine refused or failed a request; the message says what it answered."""


class EngineClient:
    def __init__(self, url: str, key: str | None, timeout: float = 120.0):
        self.base_url = url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = httpx.Client(base_url=self.base_url, headers=self.headers,
                                  timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise EngineError(f"the engine at {self.base_url} did not answer {path}: "
                              f"{exc}") from exc
        if response.status_code >= 400:
            raise EngineError(f"the engine answered {path} with {response.status_code}: "
                              f"{response.text[:500]}")
        return response

    def healthy(self) -> bool:
        try:
            return self._http.get("/health", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def model_names(self) -> set[str]:
        """The base ("base") and every adapter the engine holds."""
        return {m["id"] for m in self._call("GET", "/v1/models").json()["data"]}

    def base_model(self) -> str:
        """The base model's path or hub id, as the engine loaded it."""
        for model in self._call("GET", "/v1/models").json()["data"]:
            if model["id"] == "base":
                return model.get("root") or "base"
        raise EngineError("the engine serves no model named 'base'")

    def load_adapter(self, name: str, path: Path | str) -> None:
        """Load the PEFT adapter folder *path* under *name* (idempotent)."""
        try:
            self._call("POST", "/v1/load_lora_adapter",
                       json={"lora_name": name, "lora_path": str(path)})
        except EngineError as exc:
            if "already been loaded" not in str(exc):
                raise

    def unload_adapter(self, name: str) -> None:
        """Unload adapter *name*; one that is not loaded is fine."""
        try:
            self._call("POST", "/v1/unload_lora_adapter", json={"lora_name": name})
        except EngineError as exc:
            if "not found" not in str(exc).lower() and "404" not in str(exc):
                raise

    def chat(self, payload: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/v1/chat/completions", json=payload).json()

    def running_requests(self) -> float:
        """Requests the engine is generating for now (its Prometheus gauge)."""
        text = self._call("GET", "/metrics").text
        found = re.findall(r"^vllm:num_requests_running\{[^}]*\} ([0-9.e+-]+)$", text, re.M)
        return sum(float(v) for v in found)
