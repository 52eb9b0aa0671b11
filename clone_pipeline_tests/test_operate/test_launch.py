"""The launch layer's one vocabulary and one progress reader, without a running Dagster."""

import dagster as dg
import pytest

from clone_pipeline.defs.config import CollectConfig
from clone_pipeline.defs.jobs import complete_workflow, data_only
from clone_pipeline.defs.partitions import users
from clone_pipeline.launch import progress
from clone_pipeline.launch.launch import asset_config
from clone_pipeline.launch.names import COMPLETE_WORKFLOW, DATA_ONLY, USERS_PARTITIONS
from clone_pipeline.launch.progress import Progress, follow_progress
from clone_pipeline.launch.runs import Run, RunStatus


def test_every_dagster_run_status_reads_as_one_of_five():
    assert {RunStatus.of(s) for s in dg.DagsterRunStatus} == set(RunStatus)
    assert RunStatus.of(dg.DagsterRunStatus.SUCCESS) == "succeeded"
    assert RunStatus.of(dg.DagsterRunStatus.CANCELING) == "running"  # not over yet
    assert [s for s in RunStatus if s.finished] == ["succeeded", "failed", "cancelled"]


def test_a_succeeded_run_that_a_check_stopped_is_no_success():
    checks = {"readiness": {"passed": False, "description": None}}
    stopped = Run("r1", DATA_ONLY, "rosa", RunStatus.SUCCEEDED, checks=checks)
    assert not stopped.success and stopped.failed_checks == {"readiness": "failed"}
    assert Run("r2", DATA_ONLY, "rosa", RunStatus.SUCCEEDED).success


def test_the_definitions_are_built_under_the_launch_layers_names():
    assert (data_only.name, complete_workflow.name) == (DATA_ONLY, COMPLETE_WORKFLOW)
    assert users.name == USERS_PARTITIONS


def test_an_asset_config_carries_the_fields_set_on_the_typed_config():
    config = asset_config({"collected_training_data": CollectConfig(min_word_count=25)})
    assert config == {"ops": {"collected_training_data": {"config": {"min_word_count": 25}}}}
    assert asset_config({}) == {}


def _reading(status, step=None, row=True, run_status=RunStatus.RUNNING):
    row = {"id": "t1", "user": "walter", "status": status, "dagster_run_id": "r1",
           "error": None} if row else None
    run = Run("r1", COMPLETE_WORKFLOW, "walter", run_status)
    return Progress("r1", row, run, {"step": step} if step is not None else {})


@pytest.mark.parametrize("ending", [
    _reading("completed", 3),  # the training row closes
    _reading("running", 2, run_status=RunStatus.FAILED),  # the run fails first: said at once
])
def test_following_yields_each_change_and_the_last_reading(monkeypatch, ending):
    readings = iter([_reading(None, row=False), _reading(None, row=False),
                     _reading("running"), _reading("running", 1), _reading("running", 1),
                     _reading("running", 2), ending])
    monkeypatch.setattr(progress, "read_progress", lambda *_: next(readings))
    seen = [(p.status, p.latest.get("step"), p.row is not None)
            for p in follow_progress(None, None, "r1", poll_s=0)]
    assert seen == [("running", None, False), ("running", None, True), ("running", 1, True),
                    ("running", 2, True), (ending.status, ending.latest["step"], True)]
    assert next(readings, None) is None  # it read until the end, no further
