"""Train/eval split held out by question, so evaluation measures unseen questions."""

from __future__ import annotations

import hashlib
import math

from clone_pipeline.data.examples import Example


def split_by_question(examples: list[Example], eval_fraction: float = 0.1,
                      seed: int = 0) -> tuple[list[Example], list[Example]]:
    """Hold out whole question groups (responses only); stories and messages always train.

    Deterministic for a given seed: groups are ordered by a keyed hash and the first
    ceil(eval_fraction x groups) are held out. With fewer than two groups nothing is held out.
    """
    if not 0 <= eval_fraction < 1:
        raise ValueError(f"eval_fraction must be in [0, 1), got {eval_fraction}")
    groups = sorted({e.group for e in examples if e.source == "responses"},
                    key=lambda g: hashlib.blake2b(f"{seed}:{g}".encode()).digest())
    n_eval = math.ceil(eval_fraction * len(groups)) if len(groups) >= 2 else 0
    held_out = set(groups[:n_eval])
    train = [e for e in examples if e.group not in held_out]
    evaluation = [e for e in examples if e.group in held_out]
    return train, evaluation
