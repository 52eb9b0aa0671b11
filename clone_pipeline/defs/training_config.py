"""Typed run config for training, evaluation and deployment: TrainConfig's fields with its
defaults, plus the pre-flight's free-disk floor (the Launchpad documents itself)."""

import sys
from enum import Enum
from pathlib import Path

import dagster as dg
import yaml
from pydantic import Field

from clone_pipeline.defs.config import CollectConfig, FormatConfig, core_default
from clone_pipeline.services.evaluation import ControlSource
from clone_pipeline.training.base_models import PRODUCT_DEFAULT
from clone_pipeline.training.config import PRESETS, TrainConfig


def _d(name: str):
    return core_default(TrainConfig, name)


class TrainingRunConfig(dg.Config):
    base_model: str = Field(default=_d("base_model"), description="smollm2-135m-instruct "
                            "(SmolLM2-135M-Instruct, the default) or local-tiny, both built "
                            "offline, or any Hugging Face causal LM (a folder, or a hub id "
                            "whose files are in the local cache).")
    train_format: str = Field(default=_d("train_format"),
                              description="Which formatted_datasets format to train on.")
    epochs: int = Field(default=_d("epochs"), ge=1)
    max_steps: int = Field(default=_d("max_steps"), ge=0, description="0 = run the epochs.")
    batch_size: int = Field(default=_d("batch_size"), ge=1,
                            description="Sequences per optimizer step.")
    micro_batch_size: int = Field(default=_d("micro_batch_size"), ge=0,
                                  description="0 = chosen from a memory estimate.")
    learning_rate: float = Field(default=_d("learning_rate"), gt=0)
    warmup_ratio: float = Field(default=_d("warmup_ratio"), ge=0, lt=1,
                                description="Share of steps the learning rate warms up over.")
    weight_decay: float = Field(default=_d("weight_decay"), ge=0)
    context_length: int = Field(default=_d("context_length"), ge=32,
                                description="Tokens per (packed) sequence.")
    packing: bool = Field(default=_d("packing"))
    lora_r: int = Field(default=_d("lora_r"), ge=1)
    lora_alpha: int = Field(default=_d("lora_alpha"), ge=1)
    lora_dropout: float = Field(default=_d("lora_dropout"), ge=0, lt=1)
    lora_targets: list[str] = Field(default_factory=lambda: list(_d("lora_targets")))
    use_dora: bool = Field(default=_d("use_dora"))
    quantization: str = Field(default=_d("quantization"),
                              description="none, 4bit or 8bit (QLoRA, CUDA).")
    precision: str = Field(default=_d("precision"), description="auto, fp32, bf16 or fp16.")
    gradient_checkpointing: bool | None = Field(default=_d("gradient_checkpointing"),
                                                description="None = by hardware profile.")
    flash_attention: bool = Field(default=_d("flash_attention"))
    hardware_profile: str = Field(default=_d("hardware_profile"),
                                  description="auto, cpu, rtx5090, a100 or h100.")
    logging_steps: int = Field(default=_d("logging_steps"), ge=1,
                               description="Steps between metrics rows.")
    eval_steps: int = Field(default=_d("eval_steps"), ge=0, description="0 = once per epoch.")
    save_steps: int = Field(default=_d("save_steps"), ge=1)
    early_stopping_patience: int = Field(default=_d("early_stopping_patience"), ge=0)
    seed: int = Field(default=_d("seed"))
    include_voice_integration: bool = Field(
        default=_d("include_voice_integration"),
        description="Also train on the voice-conditioned examples of the user's latest "
                    "passed voice_alignment (run the voice_integration job first).")
    memory_cap_tokens: int = Field(default=_d("memory_cap_tokens"), ge=0,
                                   description="Testing aid: simulate out-of-memory above "
                                               "this many tokens per micro-batch.")
    min_free_disk_gb: float = Field(default=5.0, ge=0,
                                    description="Pre-flight: free disk for checkpoints (GB).")

    def train_config(self) -> TrainConfig:
        return TrainConfig.from_dict(self.model_dump(exclude={"min_free_disk_gb"}))


class EvaluationConfig(dg.Config):
    control: ControlSource = Field(
        default=ControlSource.REFERENCE,
        description="Whose answers the persona-similarity control uses: REFERENCE (a "
                    "neutral set shipped with the project) or OTHER_USERS (every other "
                    "user's collected answers; only with their families' consent).")


class DeploymentConfig(dg.Config):
    auto_deploy: bool = Field(
        default=False, description="Deploy the version model_evaluation promoted (it beat "
        "its base and the current version). Off: the asset records that nothing was deployed.")
    deployment_name: str = Field(default="", description="Name of a new deployment (default "
                                 "USER-vN); a user's existing deployment keeps its name.")
    inference_type: str = Field(default="text", description="text or voice_integrated.")
    caching: bool = Field(default=True, description="Cache deterministic answers.")


def preset_run_config(preset: str) -> dict:
    """complete_workflow's run config with every field at its Launchpad default and the
    training preset *preset* applied (what examples/run_config/<preset>.yaml holds). The base
    model is the product's default whatever CLONE_BASE_MODEL says here."""
    configs = {"collected_training_data": CollectConfig(),
               "formatted_datasets": FormatConfig(tokenizer=PRODUCT_DEFAULT),
               "trained_adapter": TrainingRunConfig(**{"base_model": PRODUCT_DEFAULT,
                                                       **PRESETS[preset]}),
               "model_evaluation": EvaluationConfig(), "deployment": DeploymentConfig()}
    return {"ops": {op: {"config": _as_run_config(c)} for op, c in configs.items()}}


def _as_run_config(config: dg.Config) -> dict:
    """*config* as run config is written: Dagster names an enum's members, not its values."""
    return {k: v.name if isinstance(v, Enum) else v
            for k, v in config.model_dump().items()}


def preset_yaml(preset: str) -> str:
    header = (f"# complete_workflow run config: the Launchpad's defaults with the {preset} "
              f"training preset.\n"
              f"#   clone-pipeline run USER --job complete_workflow --config "
              f"examples/run_config/{preset}.yaml\n"
              f"# Generated by: python -m clone_pipeline.defs.training_config "
              f"examples/run_config\n")
    return header + yaml.safe_dump(preset_run_config(preset), sort_keys=False)


if __name__ == "__main__":  # regenerate the shipped examples into the folder given
    for name in PRESETS:
        (Path(sys.argv[1]) / f"{name}.yaml").write_text(preset_yaml(name), encoding="utf-8")
