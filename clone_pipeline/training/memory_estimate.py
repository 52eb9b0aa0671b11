"""What a training run of a config on a hardware profile resolves to (attention, precision,
gradient checkpointing, the LoRA config) and the peak memory it will need: the pre-flight
checks the estimate before a run starts, the trainer sizes its first micro-batch with it.

Nothing heavy is imported at module level: the pre-flight runs in the launching process,
which loads torch only when a run is checked.
"""

from __future__ import annotations

from dataclasses import dataclass

from clone_pipeline.quantization import Quantization
from clone_pipeline.training.config import TrainConfig
from clone_pipeline.training.hardware import HardwareReport


def attention_implementation(config: TrainConfig, hardware: HardwareReport) -> str:
    """What the model will really run: the profile's choice, or SDPA when the config turns
    flash-attention off. Packing needs the block mask unless this is flash_attention_2."""
    return hardware.profile.attention if config.flash_attention else "sdpa"


def lora_config(config: TrainConfig):
    """The PEFT LoraConfig of *config* (LoRA or DoRA on the configured target modules)."""
    from peft import LoraConfig

    targets = (config.lora_targets[0] if config.lora_targets == ("all-linear",)
               else list(config.lora_targets))
    return LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha,
                      lora_dropout=config.lora_dropout, target_modules=targets,
                      use_dora=config.use_dora, task_type="CAUSAL_LM")


def precision(config: TrainConfig, hardware: HardwareReport) -> str:
    return hardware.profile.precision if config.precision == "auto" else config.precision


def use_checkpointing(config: TrainConfig, hardware: HardwareReport) -> bool:
    return (hardware.profile.gradient_checkpointing if config.gradient_checkpointing is None
            else config.gradient_checkpointing)


def activation_bytes_per_sequence(config: TrainConfig, model_config,
                                  hardware: HardwareReport) -> int:
    """Bytes of activations one sequence of ``context_length`` tokens needs in training.

    A rough upper bound; *model_config* is the base model's transformers config. Per token:
    16 x hidden_size values a layer kept for the backward pass (every layer, or about two
    with gradient checkpointing) and five fp32 copies of the vocabulary's logits (the logits,
    the loss's fp32 copy and log-softmax, and their gradients). Per sequence, unless
    flash-attention 2 runs (it never materialises them): two fp32 heads x context^2 attention
    matrices a layer. Checked against local-tiny's measured peak on CPU (README, Memory).
    """
    bytes_per = 2 if precision(config, hardware) in ("bf16", "fp16") else 4
    layers = model_config.num_hidden_layers if not use_checkpointing(config, hardware) else 2
    tokens = config.context_length
    per_token = layers * 16 * model_config.hidden_size * bytes_per + 5 * model_config.vocab_size * 4
    flash = attention_implementation(config, hardware) == "flash_attention_2"
    attention = 0 if flash else layers * 2 * model_config.num_attention_heads * tokens**2 * 4
    return tokens * per_token + attention


def estimate_micro_batch(config: TrainConfig, model_config, hardware: HardwareReport) -> int:
    """Largest power-of-two micro-batch whose activations fit half the profile's memory
    budget; the out-of-memory back-off corrects it at run time."""
    if config.micro_batch_size:
        return min(config.micro_batch_size, config.batch_size)
    per_seq = activation_bytes_per_sequence(config, model_config, hardware)
    fits = max(1, int(hardware.profile.memory_budget_mb * 2**20 * 0.5 // per_seq))
    micro = 1
    while micro * 2 <= min(fits, config.batch_size):
        micro *= 2
    return micro


# Bytes per weight of a bitsandbytes-quantised linear layer: NF4 packs two weights a byte and
# keeps one 8-bit scale per 64-weight block (double quantisation); int8 is one byte a weight.
QUANTIZED_WEIGHT_BYTES = {Quantization.FOUR_BIT: 0.5 + 1 / 64, Quantization.EIGHT_BIT: 1.0}
# A trainable parameter holds its fp32 value, its fp32 gradient and AdamW's two fp32 moments.
TRAINABLE_PARAMETER_BYTES = 16
# The training process itself on CPU: Python with torch, transformers and peft loaded held
# 492 MiB before its first step here (torch 2.13 CPU build). On a GPU the CUDA context is not
# counted: it has not been measured on this project's hardware.
CPU_RUNTIME_BYTES = 512 * 2**20


@dataclass(frozen=True)
class MemoryEstimate:
    """What a training run holds in memory at its peak, in bytes."""

    parameters: int  # of the base model
    trainable_parameters: int  # LoRA / DoRA
    weights_bytes: int  # frozen base weights as loaded (quantised when configured)
    weights_format: str  # "float32", "bfloat16", "4bit", ...
    adapter_bytes: int  # trainable weights, their gradients and the optimizer's moments
    activation_bytes: int  # micro_batch sequences of context_length tokens
    runtime_bytes: int  # the training process itself (CPU only)
    micro_batch: int
    context_length: int

    @property
    def total_bytes(self) -> int:
        return (self.weights_bytes + self.adapter_bytes + self.activation_bytes
                + self.runtime_bytes)

    def describe(self) -> str:
        gib = 2**30
        return (f"{self.total_bytes / gib:.2f} GiB: base weights {self.weights_bytes / gib:.2f} "
                f"GiB ({self.parameters / 1e6:,.1f}M parameters, {self.weights_format}), "
                f"adapter with gradients and optimizer state {self.adapter_bytes / gib:.2f} "
                f"GiB ({self.trainable_parameters / 1e6:,.2f}M trainable), activations "
                f"{self.activation_bytes / gib:.2f} GiB (micro-batch {self.micro_batch} x "
                f"{self.context_length} tokens)"
                + (f", runtime {self.runtime_bytes / gib:.2f} GiB" if self.runtime_bytes
                   else ""))


def estimate_memory(config: TrainConfig, model_config, hardware: HardwareReport,
                    micro_batch: int | None = None) -> MemoryEstimate:
    """Peak memory a run of *config* needs, from the base model's shape alone.

    The model and its adapter are built on PyTorch's meta device (no weights are read or
    allocated), with the dtype the weights load in; quantised linear layers count
    QUANTIZED_WEIGHT_BYTES a weight and, as prepare_model_for_kbit_training casts them, the
    other frozen weights fp32. *micro_batch* defaults to the one the trainer starts with.
    """
    import torch  # with peft and transformers: only when a run is checked, not on import
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        base = AutoModelForCausalLM.from_config(model_config)
    quantized: set[int] = set()
    if config.quantization != Quantization.NONE:
        output = base.get_output_embeddings()
        quantized = {id(m.weight) for m in base.modules()
                     if isinstance(m, torch.nn.Linear) and m is not output}
    model = get_peft_model(base, lora_config(config))
    weights = trainable = parameters = 0
    formats = set()
    for param in model.parameters():  # tied weights are listed once
        if param.requires_grad:
            trainable += param.numel()
            continue
        parameters += param.numel()
        if id(param) in quantized:
            weights += param.numel() * QUANTIZED_WEIGHT_BYTES[config.quantization]
        elif quantized:
            weights += param.numel() * 4
        else:
            weights += param.numel() * param.element_size()
            formats.add(str(param.dtype).removeprefix("torch."))
    micro = micro_batch or estimate_micro_batch(config, model_config, hardware)
    return MemoryEstimate(
        parameters=parameters, trainable_parameters=trainable, weights_bytes=int(weights),
        weights_format=config.quantization if quantized else "/".join(sorted(formats)),
        adapter_bytes=trainable * TRAINABLE_PARAMETER_BYTES,
        activation_bytes=micro * activation_bytes_per_sequence(config, model_config, hardware),
        runtime_bytes=CPU_RUNTIME_BYTES if hardware.profile.device == "cpu" else 0,
        micro_batch=micro, context_length=config.context_length)
