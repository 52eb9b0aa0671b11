"""Typed run config for training (mirrors TrainConfig; the Launchpad documents itself)."""

import dagster as dg
from pydantic import Field

from clone_pipeline.training.config import TrainConfig


class TrainingRunConfig(dg.Config):
    base_model: str = Field(default="local-tiny", description="Hugging Face causal LM (hub "
                            "id with local files, or a folder), or local-tiny (built offline).")
    train_format: str = Field(default="conversational",
                              description="Which formatted_datasets format to train on.")
    epochs: int = Field(default=3, ge=1)
    max_steps: int = Field(default=0, ge=0, description="0 = run the epochs.")
    batch_size: int = Field(default=8, ge=1, description="Sequences per optimizer step.")
    micro_batch_size: int = Field(default=0, ge=0,
                                  description="0 = chosen from a memory estimate.")
    learning_rate: float = Field(default=2e-4, gt=0)
    context_length: int = Field(default=1024, ge=32, description="Tokens per sequence.")
    packing: bool = Field(default=True)
    lora_r: int = Field(default=16, ge=1)
    lora_alpha: int = Field(default=32, ge=1)
    lora_dropout: float = Field(default=0.05, ge=0, lt=1)
    lora_targets: list[str] = Field(default_factory=lambda: ["all-linear"])
    use_dora: bool = Field(default=False)
    quantization: str = Field(default="none", description="none, 4bit or 8bit (QLoRA, CUDA).")
    precision: str = Field(default="auto", description="auto, fp32, bf16 or fp16.")
    gradient_checkpointing: bool | None = Field(default=None,
                                                description="None = by hardware profile.")
    flash_attention: bool = Field(default=True)
    hardware_profile: str = Field(default="auto",
                                  description="auto, cpu, rtx5090, a100 or h100.")
    eval_steps: int = Field(default=0, ge=0, description="0 = once per epoch.")
    save_steps: int = Field(default=10, ge=1)
    early_stopping_patience: int = Field(default=2, ge=0)
    seed: int = Field(default=0)
    include_voice_integration: bool = Field(
        default=False, description="Also train on the voice-conditioned examples of the "
        "user's latest passed voice_alignment (run the voice_integration job first).")
    memory_cap_tokens: int = Field(default=0, ge=0, description="Testing aid: simulate "
                                   "out-of-memory above this many tokens per micro-batch.")
    min_free_disk_gb: float = Field(default=5.0, ge=0,
                                    description="Pre-flight: free disk for checkpoints.")

    def train_config(self) -> TrainConfig:
        values = self.model_dump(exclude={"min_free_disk_gb"})
        values["lora_targets"] = tuple(values["lora_targets"])
        return TrainConfig(**values)


# One-click presets (jobs with baked config), from a laptop to a datacentre GPU.
PRESETS = {
    "cpu_demo": {"hardware_profile": "cpu", "epochs": 3, "batch_size": 4,
                 "context_length": 512, "learning_rate": 3e-3, "min_free_disk_gb": 0.5},
    "rtx5090": {"hardware_profile": "rtx5090", "base_model": "microsoft/DialoGPT-medium",
                "epochs": 3, "batch_size": 16, "context_length": 2048,
                "learning_rate": 2e-4, "quantization": "none"},
    "h100": {"hardware_profile": "h100", "epochs": 3, "batch_size": 32,
             "context_length": 4096, "learning_rate": 2e-4},
}
