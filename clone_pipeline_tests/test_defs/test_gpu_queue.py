"""The multi-user GPU queue, end to end, on Dagster's own machinery.

A real `dagster dev` (webserver and daemon) with PostgreSQL storage and one GPU slot. A long
"blocker" training run holds the slot while six training runs are submitted into two admin
queues with mixed priorities; cancelling the blocker frees the slot. Dagster's own run
records and events must then show: no two GPU runs overlapped, they started in the order of
their queue's priority weights (first come first served within a weight), and the first of
them started within a daemon cycle plus the training child's stop grace of the cancel. With
two slots, a run whose worker is killed is marked failed (and its training_runs row says
why), and a run past its dagster/max_runtime is ended.
"""

import os
import re
import signal
import time
from pathlib import Path

import dagster as dg
import psutil
import pytest

from clone_pipeline.demo import PERSONAS_DIR
from clone_pipeline.launch.dagster_api import DagsterApi
from clone_pipeline.launch.launch import launch_tags
from clone_pipeline.launch.names import COMPLETE_WORKFLOW as WORKFLOW_JOB
from clone_pipeline.launch.queues import update_queue
from clone_pipeline.launch.workflows import start_training
from clone_pipeline.services import training as runs
from clone_pipeline.services.queues import create_queue
from clone_pipeline.settings import load_settings
from clone_pipeline.training.supervision import STOP_GRACE_SECONDS
from clone_pipeline_tests.test_defs.dagster_dev import (
    BIN,
    code_location_loaded,
    dagster_dev,
    wait_for,
)

USERS = ("margaret-ellis", "walter-okafor")
TRAIN = {"max_steps": 3, "batch_size": 4, "context_length": 256, "save_steps": 100,
         "eval_steps": 100, "min_free_disk_gb": 0.1}
LONG = {**TRAIN, "max_steps": 5000, "save_steps": 5}
FINISHED = (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE,
            dg.DagsterRunStatus.CANCELED)
DAEMON_CYCLE_S = 15  # generous: the run queue is checked every few seconds


def _config(train: dict) -> dict:
    return {"ops": {"trained_adapter": {"config": train}}}


def _prepare(env: dict) -> None:
    """Collect and format both users' data in-process before the server starts."""
    import subprocess

    done = subprocess.run([str(BIN / "clone-pipeline"), "run", *USERS, "--job", "data_only"],
                          env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def _training_child(home: str) -> psutil.Process | None:
    for p in psutil.process_iter(["cmdline"]):
        try:
            if ("clone_pipeline.training.pipes_main" in " ".join(p.info["cmdline"] or [])
                    and p.environ().get("CLONE_HOME") == home):
                return p
        except psutil.Error:
            continue
    return None


def _run_worker(instance, run_id: str) -> psutil.Process:
    """The run's worker process, from the pid Dagster records when it starts it."""
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        found = re.search(r"Started process for run \(pid: (\d+)\)", entry.message or "")
        if found:
            return psutil.Process(int(found.group(1)))
    raise AssertionError(f"run {run_id} recorded no worker pid")


def _started(instance, run_id: str) -> float | None:
    record = instance.get_run_record_by_id(run_id)
    return record.start_time if record else None


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(900)
def test_gpu_queue_orders_by_priority_and_frees_slots(tmp_path, models_dir, local_tiny,
                                                      new_pg_database, monkeypatch):
    extra = {"DAGSTER_POSTGRES_URL": new_pg_database(), "CLONE_GPU_SLOTS": "1"}
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", extra["DAGSTER_POSTGRES_URL"])
    stopped = ("user_data_changed", "voice_recordings_changed")
    with dagster_dev(tmp_path, models_dir, [PERSONAS_DIR / u for u in USERS], extra, stopped,
                     _prepare) as (env, port), \
            dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        settings = load_settings(env)
        api = DagsterApi(settings)
        wait_for(lambda: code_location_loaded(port), 300, "the code location to load")
        assert instance.event_log_storage.get_concurrency_info("gpu").slot_count == 1

        blocker = start_training(settings, instance, USERS[0], priority="high",
                                 run_config=_config(LONG), api=api)
        wait_for(lambda: _training_child(env["CLONE_HOME"]), 300, "the blocker to train")

        create_queue(settings, "families", "admin-1", 2, {"high": 3, "medium": 2, "low": 1})
        create_queue(settings, "research", "admin-2", 1, {"high": 5, "medium": 2, "low": 1})
        plan = [("families", "low"), ("research", "medium"), ("families", "high"),
                ("research", "high"), ("families", "medium"), ("research", "low")]
        weights = {"families": {"high": 3, "medium": 2, "low": 1},
                   "research": {"high": 5, "medium": 2, "low": 1}}
        # Training only (no evaluation step): the queue is under test, not the stages.
        submitted = [api.launch(WORKFLOW_JOB, USERS[i % 2], launch_tags(settings, q, p),
                                _config(TRAIN), ["trained_adapter"])
                     for i, (q, p) in enumerate(plan)]
        time.sleep(DAEMON_CYCLE_S / 3)
        statuses = {r.run_id: r.status for r in
                    instance.get_runs(dg.RunsFilter(run_ids=submitted))}
        assert set(statuses.values()) == {dg.DagsterRunStatus.QUEUED}, \
            "a GPU run left the queue while the GPU slot was taken"

        cancelled_at = time.time()
        api.terminate(blocker)
        first = wait_for(lambda: min(filter(None, (_started(instance, r) for r in submitted)),
                                     default=None), 300, "a queued run to start", 0.5)
        assert first - cancelled_at < DAEMON_CYCLE_S + STOP_GRACE_SECONDS

        wait_for(lambda: all(instance.get_run_by_id(r).status in FINISHED for r in submitted),
                 600, "the six training runs to finish", 1)
        records = {r.dagster_run.run_id: r for r in
                   instance.get_run_records(dg.RunsFilter(run_ids=submitted))}
        assert {r.dagster_run.status for r in records.values()} == {
            dg.DagsterRunStatus.SUCCESS}
        spans = sorted((records[r].start_time, records[r].end_time) for r in submitted)
        blocker_end = instance.get_run_record_by_id(blocker).end_time
        assert spans[0][0] >= blocker_end - 1, "a queued run started beside the blocker"
        for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
            assert start >= end, "two GPU runs overlapped"
        expected = sorted(range(6), key=lambda i: -weights[plan[i][0]][plan[i][1]])
        actual = sorted(range(6), key=lambda i: records[submitted[i]].start_time)
        assert actual == expected

        # A paused queue holds its runs; resuming lets them go (no restart, no file edit).
        update_queue(settings, instance, "research", paused=True)
        held = api.launch(WORKFLOW_JOB, USERS[1], launch_tags(settings, "research", "low"),
                          {}, ["collected_training_data"])
        time.sleep(DAEMON_CYCLE_S / 2)
        assert instance.get_run_by_id(held).status == dg.DagsterRunStatus.QUEUED
        update_queue(settings, instance, "research", paused=False)
        wait_for(lambda: instance.get_run_by_id(held).status in FINISHED, 300,
                 "the resumed run to finish", 1)

        # Two slots now (the limit lives in the database: the daemon sees it at once).
        instance.event_log_storage.set_concurrency_slots("gpu", 2)
        killed = api.launch(WORKFLOW_JOB, USERS[0],
                            {"dagster/max_retries": "0"}, _config(LONG), ["trained_adapter"])
        hung = api.launch(WORKFLOW_JOB, USERS[1], {"dagster/max_runtime": "20"},
                          _config(LONG), ["trained_adapter"])
        wait_for(lambda: (lambda r: r and r["status"] == "running")(
            runs.find_run(settings, killed)), 300, "the run to be killed to train", 0.5)
        worker = _run_worker(instance, killed)
        for process in [worker, *worker.children(recursive=True)]:
            os.kill(process.pid, signal.SIGKILL)
        wait_for(lambda: instance.get_run_by_id(killed).status in FINISHED, 180,
                 "the killed run to be marked", 1)
        assert instance.get_run_by_id(killed).status == dg.DagsterRunStatus.FAILURE
        row = wait_for(lambda: (lambda r: r if r and r["status"] == "failed" else None)(
            runs.find_run(settings, killed)), 120, "its training row to be closed", 1)
        assert "the Dagster run failed" in row["error"]

        wait_for(lambda: instance.get_run_by_id(hung).status in FINISHED, 180,
                 "the run past its max runtime to end", 1)
        record = instance.get_run_record_by_id(hung)
        assert record.dagster_run.status != dg.DagsterRunStatus.SUCCESS
        assert record.end_time - record.start_time < 20 + DAEMON_CYCLE_S + STOP_GRACE_SECONDS + 30
        assert Path(env["CLONE_HOME"]).is_dir()
