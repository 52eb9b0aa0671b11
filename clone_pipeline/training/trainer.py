"""The fine-tuning loop: LoRA (or DoRA / QLoRA) on packed, assistant-only sequences.

One readable loop rather than a half-used framework. It resumes exactly (adapter, optimizer,
scheduler, RNG, data position, step), checkpoints atomically, stops cleanly when asked, and
backs off on out-of-memory by halving the micro-batch and doubling accumulation, so the
effective batch and the maths stay the same. Under ``accelerate launch`` the same loop runs in
every process, each on its share of a step's sequences (training/parallel.py).
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from clone_pipeline.files import atomic_path
from clone_pipeline.quantization import Quantization
from clone_pipeline.training.base_models import resolve_base_model
from clone_pipeline.training.collate import (
    PackedSequence,
    TokenizedExample,
    answer_loss,
    collate,
    pack,
    tokenize_record,
)
from clone_pipeline.training.config import TrainConfig
from clone_pipeline.training.hardware import HardwareReport, gpu_status, select_profile
from clone_pipeline.training.memory_estimate import (
    attention_implementation,
    estimate_micro_batch,
    lora_config,
    precision,
    use_checkpointing,
)
from clone_pipeline.training.parallel import Parallel

CHECKPOINT = "checkpoint"
ADAPTER = "adapter"


class SimulatedOutOfMemory(torch.OutOfMemoryError):
    """Raised when a micro-batch exceeds TrainConfig.memory_cap_tokens."""


@dataclass
class TrainResult:
    status: str  # completed | early_stopped | cancelled
    step: int
    total_steps: int
    adapter_dir: Path | None
    checkpoint_dir: Path
    best_eval_loss: float | None
    final_train_loss: float | None
    tokens_trained: int  # label (answer) tokens seen
    seconds: float
    micro_batch_size: int
    history: list[dict[str, Any]] = field(default_factory=list)


def load_model(config: TrainConfig, hardware: HardwareReport, models_dir: Path,
               device: torch.device | None = None):
    """Base model with LoRA adapters attached, and its tokenizer, on *device* (the profile's
    by default; one GPU per process when data-parallel). Never downloads."""
    from peft import get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = resolve_base_model(config.base_model, models_dir)
    profile = hardware.profile
    kwargs: dict[str, Any] = {"local_files_only": True,
                              "attn_implementation": attention_implementation(config, hardware)}
    if config.quantization != Quantization.NONE:
        if profile.device != "cuda":
            raise RuntimeError(f"{config.quantization} quantization (QLoRA) needs a CUDA GPU "
                               f"and bitsandbytes; this run is on {profile.device}")
        try:
            import bitsandbytes  # noqa: F401
            from transformers import BitsAndBytesConfig
        except ImportError as exc:
            raise RuntimeError("quantization needs bitsandbytes: pip install "
                               "'clone_pipeline[gpu]'") from exc
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=config.quantization == Quantization.FOUR_BIT,
            load_in_8bit=config.quantization == Quantization.EIGHT_BIT,
            bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16 if precision(config, hardware) == "bf16"
            else torch.float16)
        if device is not None and device.index is not None:
            kwargs["device_map"] = {"": device.index}  # quantised weights load in place
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except OSError as exc:
        raise RuntimeError(f"base model {config.base_model!r} is not available offline: "
                           f"give a local folder or download it first") from exc
    if config.quantization != Quantization.NONE:
        model = prepare_model_for_kbit_training(model)
    elif profile.device == "cuda":
        model.to(device or "cuda")
    if use_checkpointing(config, hardware):
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    return get_peft_model(model, lora_config(config)), tokenizer


def prepare_sequences(tokenizer, fmt: str, records: list[dict], config: TrainConfig
                      ) -> list[PackedSequence]:
    examples = [tokenize_record(tokenizer, fmt, r, config.context_length) for r in records]
    examples = [e for e in examples if any(label != -100 for label in e.labels)]
    if config.packing:
        return pack(examples, config.context_length)
    return [_single(e) for e in examples]


def _answer_tokens(seq: PackedSequence) -> int:
    """Tokens the loss is taken over: answer labels, shifted by one (answer_loss)."""
    return sum(1 for t in seq.labels[1:] if t != -100)


def _single(example: TokenizedExample) -> PackedSequence:
    seq = PackedSequence()
    seq.add(example)
    return seq


class Trainer:
    """Train one adapter. ``run`` returns when done, early-stopped or asked to stop."""

    def __init__(self, config: TrainConfig, train_records: list[dict], eval_records: list[dict],
                 output_dir: Path, models_dir: Path,
                 on_metrics: Callable[[dict[str, Any]], None] | None = None,
                 stop: threading.Event | None = None, log: Callable[[str], None] = print,
                 strategy: str = "ddp"):
        self.config = config
        self.output_dir = Path(output_dir)
        self.checkpoint_dir = self.output_dir / CHECKPOINT
        self.on_metrics = on_metrics or (lambda m: None)
        self.stop = stop or threading.Event()
        self.hardware = select_profile(config.hardware_profile)
        self.parallel = Parallel.from_environment(self.hardware.profile.device, strategy)
        self.log = log if self.parallel.is_main else (lambda message: None)
        if self.parallel.sharded and config.quantization != Quantization.NONE:
            raise ValueError(f"{config.quantization} quantization (QLoRA) trains under DDP, "
                             f"not FSDP: set CLONE_TRAIN_STRATEGY=ddp")
        self.device = (self.parallel.accelerator.device if self.parallel.accelerator
                       else torch.device(self.hardware.profile.device))
        if self.parallel.is_main:  # one process builds a missing base folder, the rest wait
            resolve_base_model(config.base_model, models_dir)
        self.parallel.wait()
        torch.manual_seed(config.seed)
        self.model, self.tokenizer = load_model(config, self.hardware, models_dir, self.device)
        self._restore_adapter_weights()  # before FSDP splits them between the processes
        # what a step calls: the model itself (sharded in place under FSDP) or DDP's wrapper
        self.train_model = self.parallel.wrap(self.model)
        self.train_seqs = prepare_sequences(self.tokenizer, config.train_format, train_records,
                                            config)
        self.eval_seqs = prepare_sequences(self.tokenizer, config.train_format, eval_records,
                                           config)
        if not self.train_seqs:
            raise ValueError("no trainable examples: the training file has no assistant text")
        self.steps_per_epoch = math.ceil(len(self.train_seqs) / config.batch_size)
        self.total_steps = (config.max_steps or config.epochs * self.steps_per_epoch)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=config.learning_rate,
                                           weight_decay=config.weight_decay)
        warmup = max(1, int(config.warmup_ratio * self.total_steps))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: min((s + 1) / warmup, 0.5 * (1 + math.cos(
                math.pi * min(1.0, s / max(1, self.total_steps))))))
        self.precision = precision(config, self.hardware)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.precision == "fp16")
        self.micro_batch = estimate_micro_batch(config, self.model.config, self.hardware)
        self.step = 0
        self.best_eval: float | None = None
        self.evals_without_improvement = 0
        self.tokens_trained = 0
        self.history: list[dict[str, Any]] = []
        # flash-attention keeps packed examples apart by their position ids; anything else
        # needs the block-diagonal mask (also when the config turned flash-attention off)
        self.block_mask = attention_implementation(config, self.hardware) != "flash_attention_2"

    # ------------------------------------------------------------------ data order

    def _batch_indices(self, step: int) -> list[int]:
        """The sequences of *step*: a fixed permutation per epoch, so resuming needs only
        the step number to continue exactly where it stopped."""
        epoch, within = divmod(step, self.steps_per_epoch)
        order = torch.randperm(len(self.train_seqs),
                               generator=torch.Generator().manual_seed(
                                   self.config.seed * 1000 + epoch)).tolist()
        size = self.config.batch_size
        return order[within * size:(within + 1) * size]

    # ------------------------------------------------------------------ one step

    def _forward(self, seqs: list[PackedSequence], model: torch.nn.Module
                 ) -> tuple[torch.Tensor, int]:
        batch = collate(seqs, self.tokenizer.pad_token_id, block_mask=self.block_mask)
        tokens = int(batch["input_ids"].numel())
        if self.config.memory_cap_tokens and tokens > self.config.memory_cap_tokens:
            raise SimulatedOutOfMemory(f"micro-batch of {tokens} tokens over the cap")
        batch = {k: v.to(self.device) for k, v in batch.items()}
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        with torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
            # FSDP reshards the head's weights once the forward ends: it keeps full logits
            return answer_loss(model, batch, answer_only_logits=not self.parallel.sharded)

    def _train_step(self, indices: list[int]) -> tuple[float, float, int]:
        """One optimizer step over the sequences at *indices* (this process's share of them
        when data-parallel); returns the step's loss per answer token, the gradient norm and
        the step's answer tokens, all over every process."""
        n_labels = sum(_answer_tokens(self.train_seqs[i]) for i in indices)
        mine = [self.train_seqs[i] for i in self.parallel.shard(indices)]
        filler = [self.train_seqs[indices[0]]]  # a pass with no sequence of its own
        while True:
            try:
                total = 0.0
                batches = self._micro_batches(mine, len(indices))
                for k, batch in enumerate(batches):
                    last = k == len(batches) - 1  # gradients are synced once, on the last
                    with (contextlib.nullcontext() if last
                          else self.parallel.no_sync(self.train_model)):
                        loss, _ = self._forward(batch or filler, self.train_model)
                        # Gradients are averaged over the processes: scaled by their number,
                        # the sum over every process / n_labels is the one-process gradient.
                        scale = self.parallel.world if batch else 0
                        self.scaler.scale(loss * scale / max(n_labels, 1)).backward()
                    total += loss.item() if batch else 0.0
                break
            except torch.OutOfMemoryError as exc:
                self.optimizer.zero_grad(set_to_none=True)
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                if self.parallel.sharded:  # the other processes wait in this pass's gather
                    raise RuntimeError(f"out of memory with a micro-batch of "
                                       f"{self.micro_batch} under FSDP: set micro_batch_size "
                                       f"lower") from exc
                if self.micro_batch == 1:
                    raise RuntimeError("out of memory with a micro-batch of 1: lower "
                                       "context_length or use quantization") from exc
                self.micro_batch //= 2  # accumulation doubles: same effective batch
                self.log(f"out of memory; retrying step {self.step + 1} with micro-batch "
                         f"{self.micro_batch}")
        self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(
            [p for p in self.model.parameters() if p.requires_grad], 1.0)
        if hasattr(grad_norm, "full_tensor"):  # FSDP: a norm over every process's shards
            grad_norm = grad_norm.full_tensor()
        grad_norm = grad_norm.item()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        [total] = self.parallel.sum([total])
        return total / max(n_labels, 1), grad_norm, n_labels

    def _micro_batches(self, seqs: list[PackedSequence], total: int
                       ) -> list[list[PackedSequence]]:
        """*seqs*, this process's share of *total* sequences, in micro-batches; padded with
        empty ones to the passes every process makes (Parallel.passes)."""
        batches = [seqs[s:s + self.micro_batch] for s in range(0, len(seqs), self.micro_batch)]
        return batches + [[]] * (self.parallel.passes(total, self.micro_batch) - len(batches))

    @torch.no_grad()
    def evaluate(self) -> float | None:
        """Mean loss per answer token on the held-out sequences."""
        if not self.eval_seqs:
            return None
        self.model.eval()
        total, count = 0.0, 0
        mine = self.parallel.shard(self.eval_seqs)
        for batch in self._micro_batches(mine, len(self.eval_seqs)):
            loss, n = self._forward(batch or self.eval_seqs[:1], self.model)
            if batch:
                total, count = total + loss.item(), count + n
        self.model.train()
        total, count = self.parallel.sum([total, count])
        return total / max(count, 1)

    # ------------------------------------------------------------------ checkpoints

    def save_checkpoint(self) -> None:
        """Write everything needed to resume exactly, atomically (temp dir + rename).

        Data-parallel processes hold the same weights and optimizer state; only their random
        streams differ (dropout over different sequences), so every process's is kept and
        the main process writes.
        """
        rng = self.parallel.gather({"cpu": torch.get_rng_state(),
                                    "cuda": (torch.cuda.get_rng_state_all()
                                             if torch.cuda.is_available() else None)})
        weights = self.parallel.full_model_state(self.model)  # gathered under FSDP
        optimizer = self.parallel.optimizer_state(self.model, self.optimizer)
        if not self.parallel.is_main:
            self.parallel.wait()
            return
        with atomic_path(self.checkpoint_dir) as tmp:
            self.model.save_pretrained(tmp / ADAPTER, state_dict=weights)
            torch.save({"optimizer": optimizer, "sharded": self.parallel.sharded,
                        "scheduler": self.scheduler.state_dict(),
                        "scaler": self.scaler.state_dict(),
                        "rng_cpu": rng[0]["cpu"], "rng_cuda": rng[0]["cuda"],
                        "rng_by_rank": rng if len(rng) > 1 else None},
                       tmp / "state.pt")
            (tmp / "progress.json").write_text(json.dumps({
                "step": self.step, "total_steps": self.total_steps,
                "micro_batch": self.micro_batch, "best_eval": self.best_eval,
                "evals_without_improvement": self.evals_without_improvement,
                "tokens_trained": self.tokens_trained, "history": self.history,
                "config": self.config.as_dict()}, default=str))
        self.parallel.wait()

    def _restore_adapter_weights(self) -> None:
        """The last checkpoint's adapter weights, if there is one (the rest of its state is
        restored by load_checkpoint when the run starts)."""
        weights = self.checkpoint_dir / ADAPTER / "adapter_model.safetensors"
        if (self.checkpoint_dir / "progress.json").exists():
            from peft import set_peft_model_state_dict
            from safetensors.torch import load_file

            set_peft_model_state_dict(self.model, load_file(str(weights)))

    def load_checkpoint(self) -> bool:
        """Resume from the last checkpoint if there is one; return whether it did. With
        another number of processes than wrote it the maths is the same, but dropout draws
        differ from an uninterrupted run."""
        progress_file = self.checkpoint_dir / "progress.json"
        if not progress_file.exists():
            return False
        state = torch.load(self.checkpoint_dir / "state.pt", weights_only=False)
        self.parallel.load_optimizer_state(self.model, self.optimizer, state["optimizer"],
                                           keyed_by_name=state.get("sharded", False))
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        by_rank = state.get("rng_by_rank") or []
        rng = (by_rank[self.parallel.rank] if len(by_rank) == self.parallel.world
               else {"cpu": state["rng_cpu"], "cuda": state["rng_cuda"]})
        torch.set_rng_state(rng["cpu"])
        if rng["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        progress = json.loads(progress_file.read_text())
        self.step = progress["step"]
        self.micro_batch = progress["micro_batch"]
        self.best_eval = progress["best_eval"]
        self.evals_without_improvement = progress["evals_without_improvement"]
        self.tokens_trained = progress["tokens_trained"]
        self.history = progress["history"]
        return True

    def save_adapter(self) -> Path:
        """The final adapter, with the tokenizer and chat template used in training, so
        inference renders prompts and stops exactly as training did."""
        target = self.output_dir / ADAPTER
        weights = self.parallel.full_model_state(self.model)  # gathered under FSDP
        if self.parallel.is_main:
            with atomic_path(target) as tmp:
                self.model.save_pretrained(tmp, state_dict=weights)
                self.tokenizer.save_pretrained(tmp)
                (tmp / "training_config.json").write_text(json.dumps(self.config.as_dict(),
                                                                     default=str, indent=2))
        self.parallel.wait()
        return target

    # ------------------------------------------------------------------ the loop

    def run(self) -> TrainResult:
        resumed = self.load_checkpoint()
        processes = f" x {self.parallel.world} processes" if self.parallel.world > 1 else ""
        self.log(f"{'resuming at' if resumed else 'starting'} step {self.step}/"
                 f"{self.total_steps} on {self.hardware.profile.name}{processes} "
                 f"({self.precision}, micro-batch {self.micro_batch}, "
                 f"{len(self.train_seqs)} train / {len(self.eval_seqs)} eval sequences)")
        eval_every = self.config.eval_steps or self.steps_per_epoch
        started = time.perf_counter()
        first_step = self.step
        status, train_loss = "completed", None
        self.model.train()
        while self.step < self.total_steps:
            if self.parallel.any(self.stop.is_set()):  # every process stops at this step
                status = "cancelled"
                break
            step_started = time.perf_counter()
            train_loss, grad_norm, labels = self._train_step(self._batch_indices(self.step))
            self.step += 1
            self.tokens_trained += labels
            eval_loss = None
            if self.step % eval_every == 0 or self.step == self.total_steps:
                eval_loss = self.evaluate()
                if eval_loss is not None:
                    if self.best_eval is None or eval_loss < self.best_eval - 1e-4:
                        self.best_eval, self.evals_without_improvement = eval_loss, 0
                    else:
                        self.evals_without_improvement += 1
            if self.step % self.config.logging_steps == 0 or eval_loss is not None:
                self._report(train_loss, eval_loss, grad_norm, labels,
                             time.perf_counter() - step_started,
                             time.perf_counter() - started, self.step - first_step)
            if (self.config.early_stopping_patience and
                    self.evals_without_improvement >= self.config.early_stopping_patience):
                status = "early_stopped"
                break
            if self.step % self.config.save_steps == 0:
                self.save_checkpoint()
        self.save_checkpoint()
        adapter = self.save_adapter() if status != "cancelled" else None
        return TrainResult(status, self.step, self.total_steps, adapter, self.checkpoint_dir,
                           self.best_eval, train_loss, self.tokens_trained,
                           time.perf_counter() - started, self.micro_batch, self.history)

    def _report(self, train_loss, eval_loss, grad_norm, labels, step_seconds, elapsed,
                steps_done) -> None:
        gpus, _ = gpu_status() if self.device.type == "cuda" else ([], "")
        gpu = gpus[0] if gpus else None
        remaining = self.total_steps - self.step
        metrics = {
            "step": self.step, "epoch": round(self.step / self.steps_per_epoch, 3),
            "loss": round(train_loss, 5),
            "eval_loss": round(eval_loss, 5) if eval_loss is not None else None,
            "learning_rate": self.scheduler.get_last_lr()[0], "grad_norm": round(grad_norm, 4),
            "tokens_per_second": round(labels / step_seconds, 1) if step_seconds else None,
            "percent_complete": round(100 * self.step / self.total_steps, 2),
            "eta_seconds": round(elapsed / steps_done * remaining, 1) if steps_done else None,
            "gpu_utilization": gpu.utilization_pct if gpu else None,
            "vram_used_mb": gpu.memory_used_mb if gpu else None,
            "gpu_temperature_c": gpu.temperature_c if gpu else None,
        }
        self.history.append(metrics)
        if self.parallel.is_main:
            self.on_metrics(metrics)
