"""Terminate a training run through Dagster, then resume it by materialising again.

The session's webserver and daemon; the run is launched and terminated through the GraphQL
API as the UI does it. The training child must checkpoint and be gone within 30 s, the
training_runs row must say cancelled, the run's GPU slot must be free at once, and the next
run must continue the step count from the checkpoint.
"""

import json
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster_graphql import DagsterGraphQLClient
from sqlalchemy import select

from clone_pipeline.db.models import TrainingMetric, TrainingRun
from clone_pipeline.db.session import session_scope
from clone_pipeline.launch.names import COMPLETE_WORKFLOW, GPU_POOL, PARTITION_TAG
from clone_pipeline_tests.test_defs.dagster_dev import (
    gone,
    training_child,
    wait_for,
    why_failed,
)

USER = "cancel-walter"
TRAIN = {"max_steps": 40, "batch_size": 4, "context_length": 256, "learning_rate": 3e-3,
         "save_steps": 2, "eval_steps": 100, "min_free_disk_gb": 0.1}
DATA = ["collected_training_data", "formatted_datasets"]  # training needs no memory index


def _steps(db_url: str, dagster_run_id: str) -> list[int]:
    with session_scope(db_url) as s:
        run = s.scalars(select(TrainingRun)
                        .where(TrainingRun.dagster_run_id == dagster_run_id)).first()
        if run is None:
            return []
        return [m.step for m in s.scalars(select(TrainingMetric).where(
            TrainingMetric.training_run_id == run.id).order_by(TrainingMetric.step))]


@pytest.mark.slow
def test_terminate_then_resume_through_dagster(live_dagster, local_tiny):
    # local_tiny: the base is built before the run starts, so the run trains at once
    with live_dagster.instance() as instance:
        live_dagster.add_user(instance, "walter-okafor", USER)
        db_url = live_dagster.settings.database_url
        client = DagsterGraphQLClient("127.0.0.1", port_number=live_dagster.port)

        def launch(assets: list[str]) -> str:
            return client.submit_job_execution(
                COMPLETE_WORKFLOW, run_config={"ops": {"trained_adapter": {"config": TRAIN}}},
                tags={PARTITION_TAG: USER}, asset_selection=assets)

        # The user's data, then training: terminated once it has trained three steps.
        first = launch([*DATA, "trained_adapter"])
        wait_for(lambda: len(_steps(db_url, first)) >= 3, 300, "three training steps",
                 interval=0.3)
        child = training_child(instance, first)
        assert child is not None
        client.terminate_run(first)
        asked = time.monotonic()
        wait_for(lambda: instance.get_run_by_id(first).status == dg.DagsterRunStatus.CANCELED,
                 120, "the run to be cancelled")
        wait_for(lambda: gone(child), 30, "the training process to exit", interval=0.3)
        assert time.monotonic() - asked < 30 + 5  # stopped within the grace period

        with session_scope(db_url) as s:
            row = s.scalars(select(TrainingRun)
                            .where(TrainingRun.dagster_run_id == first)).one()
            assert row.status == "cancelled"
            progress = json.loads((Path(row.checkpoint_path) / "progress.json").read_text())
        # The cancelled run gave its gpu slot back as its step failed, not 300 s later through
        # run monitoring (free_slots_after_run_end_seconds): a restart never waits for it.
        gpu = instance.event_log_storage.get_concurrency_info(GPU_POOL)
        assert first not in {slot.run_id for slot in gpu.claimed_slots}
        assert first not in gpu.pending_run_ids
        stopped_at = progress["step"]
        done_before = _steps(db_url, first)
        assert 3 <= stopped_at < TRAIN["max_steps"] and stopped_at == done_before[-1]

        second = launch(["trained_adapter"])
        wait_for(lambda: instance.get_run_by_id(second).status in (
            dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE), 300,
            "the resumed run to finish")
        assert instance.get_run_by_id(second).status == dg.DagsterRunStatus.SUCCESS, \
            why_failed(instance, second)
        resumed = _steps(db_url, second)
        assert resumed[0] == stopped_at + 1 and resumed[-1] == TRAIN["max_steps"]
