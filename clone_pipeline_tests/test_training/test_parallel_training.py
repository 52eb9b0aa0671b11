"""Data-parallel training: two real processes under ``accelerate launch``, joined over gloo on
this CPU machine, as they would be over NCCL with one GPU each."""

import json
import os
import signal
import subprocess

import pytest
import torch
from safetensors.torch import load_file

from clone_pipeline.data.store import write_jsonl
from clone_pipeline.launch.queues import processes_per_run
from clone_pipeline.settings import load_settings
from clone_pipeline.training.config import TrainConfig
from clone_pipeline.training.job import RESULT_FILE, TrainingJob
from clone_pipeline.training.parallel import training_command
from clone_pipeline.training.trainer import ADAPTER, Trainer

# 8 sequences a step over 2 processes, micro-batches of 2: each process accumulates twice.
CONFIG = {"max_steps": 6, "batch_size": 8, "micro_batch_size": 2, "context_length": 512,
          "learning_rate": 3e-3, "eval_steps": 3, "save_steps": 100,
          "early_stopping_patience": 0, "hardware_profile": "cpu",
          "precision": "fp32"}  # one process and two compared exactly


@pytest.fixture(scope="module")
def data_files(records, tmp_path_factory):
    folder = tmp_path_factory.mktemp("parallel-data")
    write_jsonl(folder / "train.jsonl", records[0])
    write_jsonl(folder / "eval.jsonl", records[1])
    return folder


def _launch(data_files, models_dir, out, strategy, interrupt_after: int | None = None,
            **overrides) -> dict:
    """Train on two processes under ``accelerate launch`` (the project's own launch command)
    and return what the main process wrote. With *interrupt_after*, SIGINT the launcher once
    that step has been reported, as a terminated Dagster run does."""
    out.mkdir(parents=True, exist_ok=True)
    job = out / "job.json"
    job.write_text(json.dumps(TrainingJob(
        TrainConfig(**CONFIG, **overrides), train_path=data_files / "train.jsonl",
        eval_path=data_files / "eval.jsonl", output_dir=out, models_dir=models_dir,
        strategy=strategy).as_dict()))
    command = training_command(2, module="clone_pipeline_tests.test_training."
                                         "parallel_driver") + [str(job)]
    with (out / "stderr.txt").open("w+") as errors:
        launcher = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True,
                                    env={**os.environ, "OMP_NUM_THREADS": "1"})
        for line in launcher.stdout:  # the main process reports each step as it ends
            if interrupt_after is not None and line.strip() == f"step {interrupt_after}":
                launcher.send_signal(signal.SIGINT)
        launcher.wait(timeout=120)
        errors.seek(0)
        stderr = errors.read()
    assert (out / RESULT_FILE).exists(), stderr[-3000:]
    if interrupt_after is None:
        assert launcher.returncode == 0, stderr[-3000:]
    return json.loads((out / RESULT_FILE).read_text())


def _adapter(folder):
    return load_file(str(folder / "adapter_model.safetensors"))


@pytest.fixture(scope="module")
def one_process(records, models_dir, tmp_path_factory):
    # Dropout off: its masks depend on which process draws them, everything else must not.
    return Trainer(TrainConfig(**CONFIG, lora_dropout=0.0), *records,
                   output_dir=tmp_path_factory.mktemp("one-process"), models_dir=models_dir,
                   log=lambda m: None).run()


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_two_processes_follow_the_one_process_loss_curve(strategy, one_process, data_files,
                                                         models_dir, tmp_path):
    one = one_process
    two = _launch(data_files, models_dir, tmp_path / "two", strategy, lora_dropout=0.0)
    assert two["processes"] == 2 and two["status"] == "completed" and two["step"] == 6
    assert (two["sharded_parameters"] > 0) == (strategy == "fsdp")

    for a, b in zip(one.history, two["history"], strict=True):
        assert a["step"] == b["step"]
        assert b["loss"] == pytest.approx(a["loss"], abs=2e-4)
        assert (a["eval_loss"] is None) == (b["eval_loss"] is None)
        if a["eval_loss"] is not None:
            assert b["eval_loss"] == pytest.approx(a["eval_loss"], abs=2e-4)
    assert one.history[-1]["loss"] < one.history[0]["loss"] - 0.1  # it really trained
    a, b = _adapter(one.adapter_dir), _adapter(tmp_path / "two" / ADAPTER)
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k], b[k], atol=1e-4) for k in a)


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_interrupted_two_process_run_resumes_exactly(strategy, data_files, models_dir,
                                                     tmp_path):
    # Dropout on (the default 0.05): resuming must restore each process's own random stream.
    straight = _launch(data_files, models_dir, tmp_path / "straight", strategy)
    stopped = _launch(data_files, models_dir, tmp_path / "resumed", strategy,
                      interrupt_after=2)
    # both processes took the stop at the same step boundary and the main one checkpointed
    assert stopped["status"] == "cancelled" and 2 <= stopped["step"] < 6
    assert not (tmp_path / "resumed" / ADAPTER).exists()
    resumed = _launch(data_files, models_dir, tmp_path / "resumed", strategy)
    assert resumed["status"] == "completed" and resumed["step"] == 6

    assert [m["loss"] for m in resumed["history"]] == [m["loss"] for m in straight["history"]]
    a = _adapter(tmp_path / "straight" / ADAPTER)
    b = _adapter(tmp_path / "resumed" / ADAPTER)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_processes_per_run_share_the_gpus_between_slots_and_follow_the_setting(tmp_path):
    def settings(**env):
        return load_settings({"CLONE_HOME": str(tmp_path), **env})

    # no GPU here: one process unless asked for more
    assert processes_per_run(settings()) == 1
    assert processes_per_run(settings(CLONE_TRAIN_PROCESSES="4")) == 4
    # eight GPUs: a run each by default, all eight for one run with one slot, and so on
    assert processes_per_run(settings(), gpus=8) == 1
    assert processes_per_run(settings(CLONE_GPU_SLOTS="1"), gpus=8) == 8
    assert processes_per_run(settings(CLONE_GPU_SLOTS="2"), gpus=8) == 4
    assert processes_per_run(settings(CLONE_GPU_SLOTS="3"), gpus=8) == 2
    assert training_command(1)[1:] == ["-m", "clone_pipeline.training.pipes_main"]
    launch = training_command(4)
    assert launch[1:4] == ["-m", "accelerate.commands.launch", "--multi_gpu"]
    assert launch[launch.index("--num_processes") + 1] == "4"
    with pytest.raises(ValueError, match="CLONE_TRAIN_STRATEGY must be one of ddp, fsdp"):
        settings(CLONE_TRAIN_STRATEGY="zero3")
