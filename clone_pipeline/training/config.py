"""Training configuration, with defaults for small personal datasets."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from clone_pipeline.quantization import QUANTIZATIONS, Quantization
from clone_pipeline.training.base_models import DEFAULT_BASE_MODEL

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass(frozen=True)
class TrainConfig:
    """One fine-tuning run. A personal dataset is a few hundred answers: many epochs would
    memorise them, so a few epochs with early stopping on held-out loss are the default."""

    # smollm2-135m-instruct (packaged), local-tiny, a local folder or a hub id (cached files)
    base_model: str = DEFAULT_BASE_MODEL
    train_format: str = "conversational"
    epochs: int = 3
    max_steps: int = 0  # 0 = run the epochs
    batch_size: int = 8  # sequences per optimizer step (micro-batch x accumulation)
    micro_batch_size: int = 0  # 0 = from the memory estimate
    learning_rate: float = 2e-4
    warmup_ratio: float = 0.05
    weight_decay: float = 0.0
    context_length: int = 1024  # tokens per (packed) sequence
    packing: bool = True
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] = ("all-linear",)
    use_dora: bool = False
    quantization: str = Quantization.NONE.value  # QUANTIZATIONS (bitsandbytes, CUDA only)
    precision: str = "auto"  # auto = by hardware: bf16, else fp16 with loss scaling; fp32 on CPU
    gradient_checkpointing: bool | None = None  # None = by hardware profile
    flash_attention: bool = True  # used when installed and supported, else SDPA
    hardware_profile: str = "auto"
    logging_steps: int = 1
    eval_steps: int = 0  # 0 = once per epoch
    save_steps: int = 10
    early_stopping_patience: int = 2  # evaluations without improvement before stopping
    seed: int = 0
    # Add the voice-conditioned examples of the user's latest passed voice_alignment (part of
    # the config, so a run with them never resumes a checkpoint trained without them).
    include_voice_integration: bool = False
    # Tokens one micro-batch may hold before it counts as out of memory. 0 = no cap. Used to
    # exercise the out-of-memory back-off without exhausting a real device.
    memory_cap_tokens: int = 0

    def __post_init__(self) -> None:
        if self.quantization not in QUANTIZATIONS:
            raise ValueError(f"quantization must be one of {QUANTIZATIONS}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}")
        if self.batch_size < 1 or self.epochs < 1:
            raise ValueError("batch_size and epochs must be at least 1")

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """The config a run recorded (as_dict, possibly through JSON) back as a TrainConfig;
        fields it leaves out take their defaults, fields it does not know are refused."""
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown training config field(s): {', '.join(unknown)}")
        return cls(**{**values, "lora_targets": tuple(values.get("lora_targets",
                                                                 cls.lora_targets))})


# One-click presets, from a laptop to a datacentre GPU: TrainConfig values, plus the
# pre-flight's free-disk floor for checkpoints (min_free_disk_gb, in GB).
PRESETS: dict[str, dict] = {
    # Two CPU cores, SmolLM2-135M: two epochs of a demo persona (12 steps of 8 sequences)
    # take 1.5 to 3 minutes (bf16 where the CPU has it, fp32 otherwise) and lower held-out
    # perplexity by a third (README, Training).
    "cpu_demo": {"hardware_profile": "cpu", "epochs": 2, "batch_size": 8,
                 "context_length": 512, "learning_rate": 1e-3, "min_free_disk_gb": 0.5},
    "rtx5090": {"hardware_profile": "rtx5090", "epochs": 3, "batch_size": 16,
                "context_length": 2048, "learning_rate": 2e-4,
                "quantization": Quantization.NONE.value},
    "h100": {"hardware_profile": "h100", "epochs": 3, "batch_size": 32,
             "context_length": 4096, "learning_rate": 2e-4},
}
