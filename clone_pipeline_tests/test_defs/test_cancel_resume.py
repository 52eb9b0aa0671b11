"""Terminate a training run through Dagster, then resume it by materialising again.

Real webserver and daemon; the run is launched and terminated through the GraphQL API as the
UI does it. The training child must checkpoint and be gone within 30 s, the training_runs row
must say cancelled, and the next run must continue the step count from the checkpoint.
"""

import json
import time
from pathlib import Path

import dagster as dg
import psutil
import pytest
from dagster_graphql import DagsterGraphQLClient
from sqlalchemy import select

from clone_pipeline.db.models import TrainingMetric, TrainingRun
from clone_pipeline.db.session import session_scope
from clone_pipeline.demo import PERSONAS_DIR
from clone_pipeline_tests.test_defs.dagster_dev import dagster_dev, wait_for

USER = "walter-okafor"
TRAIN = {"max_steps": 40, "batch_size": 4, "context_length": 512, "learning_rate": 3e-3,
         "save_steps": 2, "eval_steps": 20, "min_free_disk_gb": 0.1}


def _training_children(home: str) -> list[psutil.Process]:
    """This server's training processes (by their data root: other tests on the machine may
    be training too)."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if ("clone_pipeline.training.pipes_main" in " ".join(p.info["cmdline"] or [])
                    and p.environ().get("CLONE_HOME") == home):
                found.append(p)
        except psutil.Error:  # gone meanwhile, or not ours to read
            continue
    return found


def _steps(db_url: str, dagster_run_id: str) -> list[int]:
    with session_scope(db_url) as s:
        run = s.scalars(select(TrainingRun)
                        .where(TrainingRun.dagster_run_id == dagster_run_id)).first()
        if run is None:
            return []
        return [m.step for m in s.scalars(select(TrainingMetric).where(
            TrainingMetric.training_run_id == run.id).order_by(TrainingMetric.step))]


@pytest.mark.slow
def test_terminate_then_resume_through_dagster(tmp_path, models_dir, local_tiny):
    # local_tiny: the base is built before the server starts, so the run trains at once
    with dagster_dev(tmp_path, models_dir, [PERSONAS_DIR / USER]) as (env, port), \
            dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        db_url = f"sqlite:///{Path(env['CLONE_HOME']) / 'clone.db'}"
        client = DagsterGraphQLClient("127.0.0.1", port_number=port)
        wait_for(lambda: any(r.status == dg.DagsterRunStatus.SUCCESS for r in
                             instance.get_runs(dg.RunsFilter(job_name="data_only"))),
                 300, "the sensor's data run")

        def launch() -> str:
            return client.submit_job_execution(
                "complete_workflow", run_config={"ops": {"trained_adapter": {"config": TRAIN}}},
                tags={"dagster/partition": USER})

        first = launch()
        wait_for(lambda: len(_steps(db_url, first)) >= 3, 240, "three training steps",
                 interval=0.3)
        client.terminate_run(first)
        asked = time.monotonic()
        wait_for(lambda: instance.get_run_by_id(first).status == dg.DagsterRunStatus.CANCELED,
                 120, "the run to be cancelled")
        wait_for(lambda: not _training_children(env["CLONE_HOME"]), 30,
                 "the training process to exit")
        assert time.monotonic() - asked < 30 + 5  # stopped within the grace period

        with session_scope(db_url) as s:
            row = s.scalars(select(TrainingRun)
                            .where(TrainingRun.dagster_run_id == first)).one()
            assert row.status == "cancelled"
            progress = json.loads((Path(row.checkpoint_path) / "progress.json").read_text())
        # The cancelled run gave its gpu slot back as its step failed, not 300 s later through
        # run monitoring (free_slots_after_run_end_seconds): a restart never waits for it.
        gpu = instance.event_log_storage.get_concurrency_info("gpu")
        assert gpu.claimed_slots == [] and first not in gpu.pending_run_ids
        stopped_at = progress["step"]
        done_before = _steps(db_url, first)
        assert 3 <= stopped_at < TRAIN["max_steps"] and stopped_at == done_before[-1]

        second = launch()
        wait_for(lambda: instance.get_run_by_id(second).status in (
            dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE), 300,
            "the resumed run to finish")
        assert instance.get_run_by_id(second).status == dg.DagsterRunStatus.SUCCESS
        resumed = _steps(db_url, second)
        assert resumed[0] == stopped_at + 1 and resumed[-1] == TRAIN["max_steps"]
