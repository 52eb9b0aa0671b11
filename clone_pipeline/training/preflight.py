"""Checks before any heavy training work: the base model's files, the config's identity,
and the run's estimated peak memory against what the hardware profile has free."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

from clone_pipeline.quantization import Quantization
from clone_pipeline.training import local_tiny
from clone_pipeline.training.base_models import (
    BaseModelError,
    load_tokenizer,
    resolve_base_model,
)
from clone_pipeline.training.config import TrainConfig
from clone_pipeline.training.hardware import HardwareReport, free_memory_mb, select_profile
from clone_pipeline.training.memory_estimate import (
    MemoryEstimate,
    activation_bytes_per_sequence,
    estimate_memory,
    use_checkpointing,
)


class PreflightError(RuntimeError):
    """Training cannot start; the message says what is missing and what to do."""


@dataclass(frozen=True)
class MemoryCheck:
    """The pre-flight's memory figures: what the run needs against what is free."""

    estimate: MemoryEstimate
    available_mb: float | None  # None: could not be read, so not compared
    source: str  # what was read, e.g. "available RAM"

    def describe(self) -> str:
        free = (f"{self.available_mb / 1024:.2f} GiB" if self.available_mb is not None
                else "unknown")
        return f"needs {self.estimate.describe()}; {self.source}: {free}"


def config_hash(config: TrainConfig) -> str:
    """Identifies a run's configuration: its output folder (and so its checkpoint) is keyed
    by it, so only an identical config resumes."""
    return hashlib.sha256(json.dumps(config.as_dict(), sort_keys=True, default=str)
                          .encode()).hexdigest()[:12]


def base_model_config(name: str, models_dir: Path):
    """The base model's transformers config, from local files only (local-tiny's from its
    recipe, so the model need not be built yet; a packaged model is converted now if it has
    not been). Raises PreflightError if it has none."""
    if name == local_tiny.NAME:
        return local_tiny.model_config(load_tokenizer(name, models_dir))
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(resolve_base_model(name, models_dir),
                                          local_files_only=True)
    except BaseModelError as exc:
        raise PreflightError(str(exc)) from exc
    except (OSError, ValueError) as exc:
        raise PreflightError(f"base model {name!r} has no local files: give a local folder or "
                             f"download it first (nothing is downloaded during a run)") from exc


def check_memory(config: TrainConfig, model_config,
                 available_memory_mb: float | None = None) -> MemoryCheck:
    """The run's estimated peak memory against what is free on its hardware profile's device
    (read now unless *available_memory_mb* is given); PreflightError if it does not fit."""
    try:
        hardware = select_profile(config.hardware_profile)
    except (ValueError, RuntimeError) as exc:
        raise PreflightError(str(exc)) from exc
    estimate = estimate_memory(config, model_config, hardware)
    if available_memory_mb is None:
        available_memory_mb, source = free_memory_mb(hardware)
    else:
        source = f"memory available to the {hardware.profile.name} profile"
    check = MemoryCheck(estimate, available_memory_mb, source)
    if available_memory_mb is None or estimate.total_bytes <= available_memory_mb * 2**20:
        return check
    advice = _memory_advice(config, model_config, hardware, estimate,
                            available_memory_mb * 2**20)
    raise PreflightError(f"not enough memory to train on the {hardware.profile.name!r} "
                         f"profile: the run {check.describe()}. To fit, {advice}.")


def _memory_advice(config: TrainConfig, model_config, hardware: HardwareReport,
                   estimate: MemoryEstimate, available: float) -> str:
    """What would make the run fit in *available* bytes, most effective first."""
    on_gpu = hardware.profile.device == "cuda"
    room = available - (estimate.total_bytes - estimate.activation_bytes)
    advice = []
    if room > 0:  # everything but the activations fits: fewer or shorter sequences may
        per_sequence = estimate.activation_bytes / estimate.micro_batch
        if estimate.micro_batch > 1 and room >= per_sequence:
            advice.append(f"set micro_batch_size to {2 ** int(math.log2(room // per_sequence))}")
        longest = 0  # the longest context at which this micro-batch fits, by bisection
        low, high = 32, config.context_length - 1
        while low <= high:
            middle = (low + high) // 2
            if estimate.micro_batch * activation_bytes_per_sequence(
                    replace(config, context_length=middle), model_config, hardware) <= room:
                longest, low = middle, middle + 1
            else:
                high = middle - 1
        if longest:
            advice.append(f"shorten context_length to {longest} tokens or less "
                          f"(now {config.context_length})")
        if not use_checkpointing(config, hardware):
            advice.append("turn gradient_checkpointing on")
    if on_gpu and config.quantization != Quantization.FOUR_BIT:
        advice.append(f"quantise the base model (quantization: {Quantization.FOUR_BIT}, QLoRA)")
    advice.append("use a smaller base model or a profile with more memory"
                  + ("" if on_gpu else " (a GPU profile)"))
    return "; or ".join(advice)
