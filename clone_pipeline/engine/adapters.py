"""Adapters published for a fleet of engines behind one address.

A deploy loads an adapter into the engine it reaches; behind a Service with several replicas
that is one of them. Every replica also runs vLLM's filesystem LoRA resolver
(``VLLM_LORA_RESOLVER_CACHE_DIR``): the first request naming an adapter a replica has not
got loads it from ``<lora_dir>/<name>/``. The resolver takes only adapters whose
``base_model_name_or_path`` is the engine's own ``--model``, so the published folder holds a
copy of the adapter's config naming that base, and links to its weights (nothing personal is
copied; the weights stay where training wrote them, on the shared volume).
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

from clone_pipeline.files import atomic_path, remove_path

WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")


def publish(lora_dir: Path, name: str, adapter_path: Path | str, base_model: str) -> Path:
    """Make adapter *name* resolvable by every engine reading *lora_dir*."""
    source = Path(adapter_path).resolve()
    config = json.loads((source / "adapter_config.json").read_text())
    target = Path(lora_dir) / name
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "adapter_config.json").write_text(json.dumps(
            {**config, "base_model_name_or_path": base_model}, indent=2))
        for weights in WEIGHTS:
            if (source / weights).exists():
                os.symlink(source / weights, tmp / weights)
    return target


def withdraw(lora_dir: Path, name: str) -> None:
    """Stop new replicas from resolving *name* (the gateway already refuses it). One rename
    takes it out of the resolver's sight, so no replica reads a half-removed folder."""
    target = Path(lora_dir) / name
    gone = target.with_name(f".{name}.withdrawn{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        os.replace(target, gone)
    except FileNotFoundError:
        return
    remove_path(gone)
