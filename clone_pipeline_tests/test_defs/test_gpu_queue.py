"""The multi-user GPU queue, end to end, on Dagster's own machinery.

The session's `dagster dev` (webserver and daemon, PostgreSQL storage) with one GPU slot. A
"blocker" run holds the slot while six runs are submitted into two admin queues with mixed
priorities; cancelling the blocker frees the slot. Dagster's own run records and events must
then show: no two GPU runs overlapped, they started in the order of their queue's priority
weights (first come first served within a weight), and the first of them started within a
daemon cycle plus the training child's stop grace of the cancel. A paused queue holds its
run until resumed. With two slots, a training run whose worker is killed is marked failed
(and its training_runs row says why), and a training run past its dagster/max_runtime is
ended.

The queue part runs the test-only job `gpu_slot_holder` (clone_pipeline_tests/
live_definitions.py): one step in the training asset's pool, partitioned by user, launched
with the same tags as a training, that holds its slot for a second. What is under test
there is the queue, not training; the killed and the hung runs are real trainings.
"""

import os
import signal
import time
from pathlib import Path

import dagster as dg
import pytest

from clone_pipeline.launch.dagster_api import DagsterApi
from clone_pipeline.launch.launch import launch_tags
from clone_pipeline.launch.names import (
    COMPLETE_WORKFLOW,
    GPU_POOL,
    MAX_RUNTIME_TAG,
    USERS_PARTITIONS,
)
from clone_pipeline.launch.queues import update_queue
from clone_pipeline.services import training as runs
from clone_pipeline.services.queues import create_queue
from clone_pipeline.training.supervision import STOP_GRACE_SECONDS
from clone_pipeline_tests.live_definitions import GPU_HOLD_JOB, RUN_HOLD_JOB, hold_config
from clone_pipeline_tests.test_defs.dagster_dev import (
    FINISHED,
    run_worker,
    wait_for,
    why_failed,
)

USERS = ("gpuq-margaret", "gpuq-walter")
DATA = ["collected_training_data", "formatted_datasets"]
A_SECOND = hold_config(GPU_HOLD_JOB, 1)
BLOCKER_USER = "gpuq-rosa"  # the blocker's own user: the queued runs wait for the slot only
PROBE_USER = "gpuq-probe"
LONG = {"max_steps": 5000, "batch_size": 4, "context_length": 256, "save_steps": 5,
        "eval_steps": 100, "min_free_disk_gb": 0.1}
DAEMON_CYCLE_S = 15  # generous: the run queue is checked every few seconds


def _train(config: dict) -> dict:
    return {"ops": {"trained_adapter": {"config": config}}}


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(900)
def test_gpu_queue_orders_by_priority_and_frees_slots(live_dagster, pg_server, local_tiny):
    settings = live_dagster.settings
    api = DagsterApi(settings)
    with live_dagster.instance() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        for persona, user in zip(("margaret-ellis", "walter-okafor"), USERS, strict=True):
            live_dagster.add_user(instance, persona, user)
        # partitions only: their runs hold, and read nothing
        instance.add_dynamic_partitions(USERS_PARTITIONS, [BLOCKER_USER, PROBE_USER])
        instance.event_log_storage.set_concurrency_slots(GPU_POOL, 1)

        def status(run_id: str) -> dg.DagsterRunStatus:
            return instance.get_run_by_id(run_id).status

        # Both users' data first (the trainings below need it; no memory index needed).
        data = [api.launch(COMPLETE_WORKFLOW, user, {}, {}, DATA) for user in USERS]
        wait_for(lambda: all(status(r) in FINISHED for r in data), 300,
                 "the data runs to finish", 0.5)
        for run_id in data:
            assert status(run_id) == dg.DagsterRunStatus.SUCCESS, why_failed(instance, run_id)

        blocker = api.launch(GPU_HOLD_JOB, BLOCKER_USER, launch_tags(settings, None, "high"),
                             hold_config(GPU_HOLD_JOB, 600))
        wait_for(lambda: status(blocker) == dg.DagsterRunStatus.STARTED, 300,
                 "the blocker to hold the slot", 0.5)

        create_queue(settings, "gpuq-families", "admin-1", 2, {"high": 3, "medium": 2, "low": 1})
        create_queue(settings, "gpuq-research", "admin-2", 1, {"high": 5, "medium": 2, "low": 1})
        plan = [("gpuq-families", "low"), ("gpuq-research", "medium"),
                ("gpuq-families", "high"), ("gpuq-research", "high"),
                ("gpuq-families", "medium"), ("gpuq-research", "low")]
        weights = {"gpuq-families": {"high": 3, "medium": 2, "low": 1},
                   "gpuq-research": {"high": 5, "medium": 2, "low": 1}}
        submitted = [api.launch(GPU_HOLD_JOB, USERS[i % 2], launch_tags(settings, q, p),
                                A_SECOND)
                     for i, (q, p) in enumerate(plan)]
        # A run that needs no GPU, submitted after the six: the daemon takes it past them,
        # and they must still be queued while the slot is taken.
        probe = api.launch(RUN_HOLD_JOB, PROBE_USER, {}, hold_config(RUN_HOLD_JOB, 1))
        wait_for(lambda: status(probe) in FINISHED, 300, "the run after them to finish", 0.5)
        assert status(probe) == dg.DagsterRunStatus.SUCCESS, why_failed(instance, probe)
        assert {status(r) for r in submitted} == {dg.DagsterRunStatus.QUEUED}, \
            "a GPU run left the queue while the GPU slot was taken"

        cancelled_at = time.time()
        api.terminate(blocker)
        first = wait_for(lambda: min(filter(None, (instance.get_run_record_by_id(r).start_time
                                                   for r in submitted)), default=None),
                         300, "a queued run to start", 0.5)
        assert first - cancelled_at < DAEMON_CYCLE_S + STOP_GRACE_SECONDS

        wait_for(lambda: all(status(r) in FINISHED for r in submitted), 600,
                 "the six runs to finish", 0.5)
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
        # A run submitted after the held one, into another queue, starts and finishes: the
        # daemon passed the held run by.
        update_queue(settings, instance, "gpuq-research", paused=True)
        held = api.launch(GPU_HOLD_JOB, USERS[1], launch_tags(settings, "gpuq-research", "low"),
                          A_SECOND)
        passed = api.launch(GPU_HOLD_JOB, USERS[0],
                            launch_tags(settings, "gpuq-families", "low"), A_SECOND)
        wait_for(lambda: status(passed) in FINISHED, 300, "the run after it to finish", 0.5)
        assert status(passed) == dg.DagsterRunStatus.SUCCESS
        assert status(held) == dg.DagsterRunStatus.QUEUED
        update_queue(settings, instance, "gpuq-research", paused=False)
        wait_for(lambda: status(held) in FINISHED, 300, "the resumed run to finish", 0.5)
        assert status(held) == dg.DagsterRunStatus.SUCCESS

        # Two slots now (the limit lives in the database: the daemon sees it at once).
        instance.event_log_storage.set_concurrency_slots(GPU_POOL, 2)
        killed = api.launch(COMPLETE_WORKFLOW, USERS[0],
                            {"dagster/max_retries": "0"}, _train(LONG), ["trained_adapter"])
        hung = api.launch(COMPLETE_WORKFLOW, USERS[1], {MAX_RUNTIME_TAG: "20"},
                          _train(LONG), ["trained_adapter"])
        wait_for(lambda: (lambda r: r and r["status"] == "running")(
            runs.find_run(settings, killed)), 300, "the run to be killed to train", 0.5)
        worker = run_worker(instance, killed)
        for process in [worker, *worker.children(recursive=True)]:
            os.kill(process.pid, signal.SIGKILL)
        wait_for(lambda: status(killed) in FINISHED, 180, "the killed run to be marked", 1)
        assert status(killed) == dg.DagsterRunStatus.FAILURE
        row = wait_for(lambda: (lambda r: r if r and r["status"] == "failed" else None)(
            runs.find_run(settings, killed)), 120, "its training row to be closed", 1)
        assert "the Dagster run failed" in row["error"]

        wait_for(lambda: status(hung) in FINISHED, 180,
                 "the run past its max runtime to end", 1)
        record = instance.get_run_record_by_id(hung)
        assert record.dagster_run.status != dg.DagsterRunStatus.SUCCESS
        assert record.end_time - record.start_time < 20 + DAEMON_CYCLE_S + STOP_GRACE_SECONDS + 30
        assert Path(settings.home).is_dir()
        instance.event_log_storage.set_concurrency_slots(GPU_POOL, 1)
