"""How a base model's weights may be quantised when loaded (bitsandbytes, CUDA only): one
set of choices for training (QLoRA) and for the serving engine alike."""

from enum import StrEnum


class Quantization(StrEnum):
    NONE = "none"
    EIGHT_BIT = "8bit"  # int8 weights
    FOUR_BIT = "4bit"  # NF4 with double quantisation (QLoRA)


QUANTIZATIONS = tuple(q.value for q in Quantization)  # the plain strings, for configs and CLIs
