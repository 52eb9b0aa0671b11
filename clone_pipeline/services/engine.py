"""Finding, starting and describing the inference engine a data root serves from.

`clone-pipeline serve` starts one engine and records it (URL, key, pid) in
``<data root>/serving/engine.json``; every other process of that data root (the Dagster
deployment asset, the CLI) finds it there. ``CLONE_ENGINE_URL`` (with ``CLONE_ENGINE_KEY``)
names an engine that runs elsewhere instead, e.g. a vLLM deployment on a GPU cluster.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from clone_pipeline.engine import adapters
from clone_pipeline.engine.client import EngineClient
from clone_pipeline.engine.lifetime import running_engine
from clone_pipeline.engine.process import EngineProcess, EngineSpec, read_state
from clone_pipeline.settings import Settings
from clone_pipeline.training.base_models import resolve_base_model


@dataclass
class EngineHandle:
    """A reachable engine and what it runs."""

    client: EngineClient
    base_model: str  # as the engine loaded it (a folder or a hub id)
    device: str  # cpu | cuda | remote
    spec: dict = field(default_factory=dict)

    @property
    def quantization(self) -> str:
        return self.spec.get("quantization", "none")

    def serves(self, base_model: str, models_dir: Path) -> bool:
        return self.base_model in (base_model, resolve_base_model(base_model, models_dir))

    def load(self, name: str, adapter_path: str | Path) -> None:
        """Publish adapter *name* for every replica's resolver, then load it into the one
        this reaches (so it is ready before the first request)."""
        if self.spec.get("lora_dir"):
            adapters.publish(Path(self.spec["lora_dir"]), name, adapter_path, self.base_model)
        self.client.load_adapter(name, adapter_path)

    def unload(self, name: str) -> None:
        """Withdraw *name* first, then unload it: a request that races the unload then
        gets a clean 404 (which the gateway answers by looking again), never a resolver
        reloading the adapter from a folder that is being removed under it."""
        if self.spec.get("lora_dir"):
            adapters.withdraw(Path(self.spec["lora_dir"]), name)
        self.client.unload_adapter(name)


def state_file(settings: Settings) -> Path:
    return settings.serving_dir / "engine.json"


def connect(settings: Settings) -> EngineHandle | None:
    """The engine this data root uses, if one is reachable now."""
    if settings.engine_url:
        client = EngineClient(settings.engine_url, settings.engine_key)
        if not client.healthy():
            return None
        spec = {"quantization": os.environ.get("CLONE_ENGINE_QUANTIZATION", "none"),
                "lora_dir": os.environ.get("CLONE_ENGINE_LORA_DIR") or None}
        return EngineHandle(client, client.base_model(), "remote", spec)
    state = read_state(state_file(settings))
    if state is None:
        return None
    client = EngineClient(state["url"], state["key"])
    if not client.healthy():
        return None
    return EngineHandle(client, state["spec"]["base_model"], state["device"], state["spec"])


def spec_for(settings: Settings, base_model: str, **overrides) -> EngineSpec:
    """The engine spec for *base_model* (a name the training records use, e.g. local-tiny)."""
    return replace(EngineSpec(resolve_base_model(base_model, settings.models_dir),
                              lora_dir=str(settings.serving_dir / "loras")), **overrides)


def handle_of(engine: EngineProcess) -> EngineHandle:
    return EngineHandle(engine.client(), engine.spec.base_model, engine.device,
                        engine.spec.describe())


@contextmanager
def engine_for(settings: Settings, base_model: str) -> Iterator[EngineHandle]:
    """The running engine if there is one, else a private one for the block (stopped after;
    the deployments it checked are restored by the next `clone-pipeline serve`)."""
    found = connect(settings)
    if found is not None:
        yield found
        return
    with running_engine(spec_for(settings, base_model),
                        settings.serving_dir / "engine-private.log") as engine:
        yield handle_of(engine)
