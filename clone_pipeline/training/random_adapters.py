"""LoRA adapters with random weights, for proving serving without training first: the
engine's output must match PEFT's for each, and many users' adapters must stay apart."""

from __future__ import annotations

from pathlib import Path

import torch

RANK = 16


def save_random_adapters(model, folder: Path, count: int, targets: list[str] | str,
                         b_scale: float = 0.2, prefix: str = "user") -> list[Path]:
    """*count* rank-16 adapters over *model* on *targets* (module names, or "all-linear"),
    saved as ``<folder>/<prefix>NN``; seeded, so the same call makes the same adapters.

    Weights are uniform within +-1/sqrt(fan in), as nn.Linear starts, with B scaled by
    *b_scale*: enough to change a greedy answer, not so much that it never ends. The model
    is returned to its base state (the adapter layers removed) afterwards."""
    from peft import LoraConfig, get_peft_model

    peft_model = get_peft_model(model, LoraConfig(
        r=RANK, lora_alpha=2 * RANK, target_modules=targets, init_lora_weights=False))
    paths = []
    for seed in range(count):
        generator = torch.Generator().manual_seed(1000 + seed)
        with torch.no_grad():
            for name, param in peft_model.named_parameters():
                if "lora_" in name:
                    bound = param.shape[1] ** -0.5 * (b_scale if "lora_B" in name else 1)
                    param.copy_((torch.rand(param.shape, generator=generator) * 2 - 1) * bound)
        paths.append(folder / f"{prefix}{seed:02d}")
        peft_model.save_pretrained(paths[-1])
    peft_model.unload()
    return paths
