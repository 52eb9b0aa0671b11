"""A training run always ends with its summary or a clear error, even when the child's
Pipes message is lost (seen once after a Celery worker was SIGKILLed and the run retried)."""

from __future__ import annotations

import time

import dagster as dg
import pytest

from clone_pipeline.defs.assets_training import reported_summary
from clone_pipeline.files import write_json
from clone_pipeline.training.job import RESULT_FILE
from clone_pipeline.training.summary import TrainingSummary

SUMMARY = TrainingSummary(
    status="completed", step=12, total_steps=12, adapter_dir="/runs/x/adapter",
    checkpoint_dir="/runs/x/checkpoint", best_eval_loss=1.5, final_train_loss=1.2,
    tokens_trained=4000, train_seconds=3.5, micro_batch_size=4, precision="fp32",
    hardware={"profile": "cpu", "processes": 1})


def test_the_reported_summary_is_used_when_the_message_arrived(tmp_path):
    reported = dg.MaterializeResult(metadata={"result": dg.JsonMetadataValue(
        SUMMARY.to_dict())})
    assert reported_summary([reported], tmp_path / RESULT_FILE, time.time()) == SUMMARY


def test_a_lost_message_falls_back_to_the_summary_file_of_this_attempt(tmp_path):
    started = time.time()
    write_json(tmp_path / RESULT_FILE, SUMMARY.to_dict())
    # what Dagster makes up for an asset the child did not report: no "result" in it
    implicit = dg.MaterializeResult(metadata={})
    assert reported_summary([implicit], tmp_path / RESULT_FILE, started) == SUMMARY


def test_without_a_message_or_a_fresh_file_the_error_says_what_to_do(tmp_path):
    write_json(tmp_path / RESULT_FILE, SUMMARY.to_dict())  # an earlier attempt's
    with pytest.raises(dg.Failure, match="materialise trained_adapter again"):
        reported_summary([], tmp_path / RESULT_FILE, time.time() + 5)
