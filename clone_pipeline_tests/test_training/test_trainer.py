"""Real LoRA training steps on the local-tiny base: loss, exact resume, OOM back-off."""

import threading

import pytest
import torch
from safetensors.torch import load_file

from clone_pipeline.training.config import TrainConfig
from clone_pipeline.training.trainer import ADAPTER, Trainer


def _trainer(records, out, models_dir, **overrides):
    # fp32: these tests compare the maths of two runs exactly (a CPU with native bf16 would
    # otherwise train in bf16 autocast, whose rounding depends on the micro-batch)
    config = TrainConfig(**{"epochs": 2, "batch_size": 4, "context_length": 512,
                            "precision": "fp32", "learning_rate": 3e-3, "save_steps": 100,
                            "early_stopping_patience": 0, **overrides})
    return Trainer(config, *records, output_dir=out, models_dir=models_dir,
                   log=lambda m: None)


def _adapter(path):
    return load_file(str(path / "adapter_model.safetensors"))


def test_training_lowers_held_out_loss_and_reports_metrics(records, tmp_path, models_dir):
    seen = []
    trainer = _trainer(records, tmp_path, models_dir)
    trainer.on_metrics = seen.append
    before = trainer.evaluate()
    result = trainer.run()
    assert result.status == "completed" and result.step == result.total_steps
    assert result.best_eval_loss < before - 0.1
    assert [m["step"] for m in seen] == list(range(1, result.total_steps + 1))
    last = seen[-1]
    assert last["percent_complete"] == 100.0 and last["tokens_per_second"] > 0
    assert last["gpu_utilization"] is None and last["vram_used_mb"] is None  # not measured
    saved = result.adapter_dir
    assert (saved / "adapter_model.safetensors").exists()
    assert (saved / "tokenizer.json").exists() and (saved / "training_config.json").exists()


def test_stop_then_resume_continues_exactly(records, tmp_path, models_dir):
    straight = _trainer(records, tmp_path / "straight", models_dir, max_steps=6).run()

    stop = threading.Event()
    first = _trainer(records, tmp_path / "resumed", models_dir, max_steps=6)
    first.stop = stop
    first.on_metrics = lambda m: stop.set() if m["step"] == 3 else None
    cancelled = first.run()
    assert cancelled.status == "cancelled" and cancelled.step == 3
    assert cancelled.adapter_dir is None and (cancelled.checkpoint_dir / ADAPTER).exists()

    resumed = _trainer(records, tmp_path / "resumed", models_dir, max_steps=6).run()
    assert resumed.status == "completed" and resumed.step == 6
    a, b = _adapter(straight.adapter_dir), _adapter(resumed.adapter_dir)
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_out_of_memory_backs_off_without_changing_the_maths(records, tmp_path, models_dir):
    # Dropout off: its masks depend on how a batch is split, everything else must not.
    plain = _trainer(records, tmp_path / "plain", models_dir, max_steps=3,
                     micro_batch_size=4, lora_dropout=0.0).run()
    capped = _trainer(records, tmp_path / "capped", models_dir, max_steps=3,
                      micro_batch_size=4, lora_dropout=0.0, memory_cap_tokens=2 * 512).run()
    assert plain.micro_batch_size == 4 and capped.micro_batch_size == 2
    assert plain.history[-1]["loss"] == pytest.approx(capped.history[-1]["loss"], abs=1e-4)
    a, b = _adapter(plain.adapter_dir), _adapter(capped.adapter_dir)
    # equal up to float summation order (Adam magnifies the last bits of tiny gradients)
    assert all(torch.allclose(a[k], b[k], atol=1e-4) for k in a)


def test_quantization_without_cuda_is_an_early_clear_error(records, tmp_path, models_dir):
    with pytest.raises(RuntimeError, match="needs a CUDA GPU"):
        _trainer(records, tmp_path, models_dir, quantization="4bit")
