"""Training throughput: our trainer against TRL's SFTTrainer, side by side in one run.

Same data (the ready demo personas' conversational training records), same model (the default
base, SmolLM2-135M-Instruct; --model local-tiny for the toy), same LoRA settings (r 16, alpha
32, dropout 0.05, all linear layers), same learning rate, batch of 8 sequences and step count,
fp32 on CPU. Ours packs examples (block-diagonal masks) and computes logits and loss on answer
tokens only. TRL runs twice: at its defaults (TRL 1.x: no packing, bf16 autocast and gradient
checkpointing, both slow on a CPU) and at its best CPU configuration (fp32, packing, no
gradient checkpointing). Each trainer runs in a fresh process; JSON out.

Reported per trainer: effective (non-pad) tokens/s, answer tokens/s, peak RSS, and model
FLOPs utilisation = 6 x parameters x non-pad tokens/s over this machine's measured fp32
matmul peak (6N is the usual dense-training estimate; LoRA skips the frozen weights'
gradient, so it is an upper bound on the work done).

    python benchmarks/train_throughput.py [--steps 6] [--model NAME] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

from harness import emit, run_child

LR, BATCH, CONTEXT = 1e-3, 8, 512  # the cpu_demo preset
LORA = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.05, "target_modules": "all-linear"}


def records(model: str, models_dir: Path) -> list[dict]:
    from clone_pipeline.data.collect import SourceMaterial, collect
    from clone_pipeline.data.format_dataset import FormatOptions, format_examples
    from clone_pipeline.data.formats import render
    from clone_pipeline.demo import PERSONAS_DIR
    from clone_pipeline.training.base_models import load_tokenizer

    tokenizer = load_tokenizer(model, models_dir)
    out = []
    for name in ("margaret-ellis", "walter-okafor"):
        doc = json.loads((PERSONAS_DIR / name / "export.json").read_text())
        formatted = format_examples(collect(SourceMaterial.from_export(doc)).examples,
                                    f"You are {doc['user']['display_name']}.", tokenizer,
                                    FormatOptions(max_length=CONTEXT))
        out += [render("conversational", e, formatted.system_prompt)
                for e in formatted.train_examples]
    return out


def matmul_peak_flops(dtype: str = "fp32") -> float:
    """Measured matmul throughput of this machine in *dtype* (FLOP/s), best of 5."""
    import torch

    kind = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
    a, b = torch.randn(2048, 2048, dtype=kind), torch.randn(2048, 2048, dtype=kind)
    a @ b
    best = 0.0
    for _ in range(5):
        start = time.perf_counter()
        a @ b
        best = max(best, 2 * 2048**3 / (time.perf_counter() - start))
    return best


def run_ours(steps: int, model: str, models_dir: Path, precision: str = "auto") -> dict:
    from clone_pipeline.training.config import TrainConfig
    from clone_pipeline.training.trainer import Trainer

    data = records(model, models_dir)
    config = TrainConfig(base_model=model, max_steps=steps, batch_size=BATCH,
                         context_length=CONTEXT,
                         learning_rate=LR, lora_r=LORA["r"], lora_alpha=LORA["lora_alpha"],
                         lora_dropout=LORA["lora_dropout"], save_steps=10**6,
                         precision=precision,
                         early_stopping_patience=0, hardware_profile="cpu")
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(config, data, [], Path(out), models_dir, log=lambda m: None)
        params = sum(p.numel() for p in trainer.model.parameters())
        start = time.perf_counter()
        result = trainer.run()
        seconds = time.perf_counter() - start
    non_pad = sum(len(trainer.train_seqs[i]) for s in range(steps)
                  for i in trainer._batch_indices(s))
    return _figures(f"ours (packed, answer-only logits and loss, {trainer.precision})",
                    non_pad, result.tokens_trained, seconds, params, steps, trainer.precision)


def run_trl(steps: int, model: str, models_dir: Path, best: bool = False) -> dict:
    """TRL's SFTTrainer with its defaults; *best*: its best CPU configuration (fp32, packing,
    no gradient checkpointing)."""
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from clone_pipeline.training.base_models import resolve_base_model

    path = resolve_base_model(model, models_dir)
    data = Dataset.from_list([{"messages": r["messages"]} for r in records(model, models_dir)])
    with tempfile.TemporaryDirectory() as out:
        args = SFTConfig(output_dir=out, max_steps=steps, per_device_train_batch_size=BATCH,
                         learning_rate=LR, max_length=CONTEXT, logging_steps=10**6,
                         save_strategy="no", report_to=[], use_cpu=True, seed=0,
                         include_num_input_tokens_seen="non_padding",
                         **({"bf16": False, "gradient_checkpointing": False, "packing": True}
                            if best else {}))
        trainer = SFTTrainer(
            model=AutoModelForCausalLM.from_pretrained(path, local_files_only=True),
            processing_class=AutoTokenizer.from_pretrained(path, local_files_only=True),
            args=args, train_dataset=data, peft_config=LoraConfig(task_type="CAUSAL_LM",
                                                                  **LORA))
        params = sum(p.numel() for p in trainer.model.parameters())
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
        non_pad = int(trainer.state.num_input_tokens_seen)
    # TRL's defaults put a loss on every non-pad token, prompts included.
    name = ("TRL SFTTrainer, best CPU configuration (fp32, packing, no gradient "
            "checkpointing)" if best else
            f"TRL SFTTrainer defaults (bf16={args.bf16}, gradient checkpointing="
            f"{args.gradient_checkpointing}, packing={args.packing})")
    return _figures(name, non_pad, non_pad, seconds, params, steps,
                    "bf16" if args.bf16 else "fp32")


def _figures(name: str, non_pad: int, trained: int, seconds: float, params: int,
             steps: int, precision: str) -> dict:
    rate = non_pad / seconds
    return {"trainer": name, "precision": precision, "steps": steps,
            "seconds": round(seconds, 2),
            "non_pad_tokens": non_pad, "non_pad_tokens_per_s": round(rate, 1),
            "loss_tokens": trained, "loss_tokens_per_s": round(trained / seconds, 1),
            "parameters": params, "model_flops_per_s": 6 * params * rate,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--model", default="smollm2-135m-instruct",
                        help="base model: smollm2-135m-instruct (default) or local-tiny")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--child", choices=["ours", "ours_fp32", "trl", "trl_best"],
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    models_dir = Path(os.environ.get("BENCH_MODELS_DIR", "/tmp/clone-bench/models"))
    if args.child:
        if args.child.startswith("ours"):
            result = run_ours(args.steps, args.model, models_dir,
                              "fp32" if args.child == "ours_fp32" else "auto")
        else:
            result = run_trl(args.steps, args.model, models_dir, best=args.child == "trl_best")
        print(json.dumps(result))
        return
    results = [run_child(__file__, "--child", kind, "--steps", str(args.steps),
                         "--model", args.model)
               for kind in ("ours", "ours_fp32", "trl", "trl_best")]
    # MFU against the peak of the precision the trainer's matmuls run in
    peaks = {dtype: matmul_peak_flops(dtype) for dtype in ("fp32", "bf16")}
    for r in results:
        r["mfu"] = round(r["model_flops_per_s"] / peaks[r["precision"]], 4)
    ours, ours_fp32, trl, trl_best = results
    report = {"benchmark": "train_throughput", "device": "cpu", "cpus": os.cpu_count(),
              "model": args.model, "batch_sequences": BATCH, "context_length": CONTEXT,
              "matmul_peak_gflops": {k: round(v / 1e9, 1) for k, v in peaks.items()},
              "results": results,
              "speedup_vs_trl_defaults": round(ours["non_pad_tokens_per_s"]
                                               / trl["non_pad_tokens_per_s"], 2),
              "speedup_vs_trl_best": round(ours["non_pad_tokens_per_s"]
                                           / trl_best["non_pad_tokens_per_s"], 2),
              "speedup_fp32_vs_trl_best": round(ours_fp32["non_pad_tokens_per_s"]
                                                / trl_best["non_pad_tokens_per_s"], 2),
              "target": ">= 2x TRL's best effective tokens/s; MFU >= 30%"}
    emit(report, args.out)


if __name__ == "__main__":
    main()
