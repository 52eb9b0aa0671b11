"""clone_pipeline's plugin for the vLLM engine (installed into ``.venv-engine`` only).

vLLM's CPU LoRA path (``PunicaWrapperCPU``) applies adapters token by token, gathering a copy
of the adapter's weight matrix for every token of every layer, which made a 16-user batch of
prompts 5-6x slower than the same engine without LoRA. ``lora_ops`` multiplies each prefill
run of tokens that share an adapter by it once, does a decode step's 16 different adapters
in two matmuls per layer, and skips layers no adapter trains. ``CLONE_SEGMENT_LORA=0``
switches it off (vLLM's own ops).
"""

from __future__ import annotations

import logging
import os

# A child of vLLM's logger, so the line lands in the engine's log with vLLM's own.
log = logging.getLogger("vllm.clone_engine_plugin")


def register() -> None:
    if os.environ.get("CLONE_SEGMENT_LORA", "1") == "0":
        return
    from vllm.platforms import current_platform

    if not current_platform.is_cpu():  # CUDA has vLLM's own LoRA kernels
        return
    try:
        from clone_engine_plugin import lora_ops
    except ImportError:  # no vLLM LoRA ops to replace in this build
        return
    if lora_ops.install():
        log.info("clone_pipeline: segment-wise LoRA ops on the CPU engine")
