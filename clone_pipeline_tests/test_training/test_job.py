"""The training job travels from the asset to its child as JSON and comes back the same; a
job the child cannot read fails with the fields it names."""

import json
from pathlib import Path

import pytest

from clone_pipeline.training.config import TrainConfig
from clone_pipeline.training.job import RESULT_FILE, TrainingJob, TrainingJobError

JOB = TrainingJob(TrainConfig(max_steps=5, lora_targets=("q_proj", "v_proj")),
                  train_path=Path("/data/train.jsonl"), eval_path=Path("/data/eval.jsonl"),
                  output_dir=Path("/runs/a"), models_dir=Path("/models"), strategy="fsdp",
                  voice_path=Path("/data/voice.jsonl"), voice_repeats=3)


def test_a_job_comes_back_the_same_through_json():
    assert TrainingJob.from_dict(json.loads(json.dumps(JOB.as_dict()))) == JOB
    plain = TrainingJob(TrainConfig(), Path("t"), Path("e"), Path("o"), Path("m"))
    assert TrainingJob.from_dict(json.loads(json.dumps(plain.as_dict()))) == plain
    assert JOB.result_file == Path("/runs/a") / RESULT_FILE


def test_a_job_with_an_unknown_or_a_missing_field_names_them():
    values = {**JOB.as_dict(), "voice_weight": 2}
    del values["eval_path"]
    with pytest.raises(TrainingJobError, match=r"unknown field\(s\) voice_weight; missing "
                                               r"field\(s\) eval_path.*same version"):
        TrainingJob.from_dict(values)


def test_an_unknown_config_field_is_refused_by_name():
    values = JOB.as_dict()
    values["config"]["learning_rte"] = 1e-3
    with pytest.raises(ValueError, match="unknown training config field.*learning_rte"):
        TrainingJob.from_dict(values)
