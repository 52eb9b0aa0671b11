"""One run per user at a time: the run queue's per-user limit, end to end.

dagster.yaml limits runs per unique value of the `dagster/partition` run tag, which Dagster
sets on every partitioned run (one user = one partition). Real webserver and daemon: two
data_only runs for one user and one for another are submitted through the GraphQL API as the
UI does, and Dagster's own run records must show the second run of the same user held in the
queue until the first had finished, while the other user's run was not held behind them.
"""

import os
import subprocess

import dagster as dg
import pytest
from dagster_graphql import DagsterGraphQLClient

from clone_pipeline.demo import PERSONAS_DIR
from clone_pipeline_tests.test_defs.dagster_dev import (
    BIN,
    REPO,
    code_location_loaded,
    dagster_dev,
    wait_for,
)

SAME, OTHER = "margaret-ellis", "walter-okafor"
CHANGE_SENSORS = ("user_data_changed", "voice_recordings_changed")
FINISHED = (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE,
            dg.DagsterRunStatus.CANCELED)


def _stop_change_sensors(tmp_path, models_dir) -> str:
    """Stop the change sensors in the instance dagster_dev will use, before its daemon starts.

    Both sensors default to running and, on their first tick, request data_only and
    voice_integration runs for every imported user: runs for the same users, under the same
    limit, interleaved with the ones under test. Stopping them through the GraphQL API once the
    server is up races that first tick; `dagster sensor stop` before the daemon starts writes
    a STOPPED instigator state that the daemon finds by the sensor's selector (location,
    repository, name), so they never tick. The env is the one dagster_dev builds; the `init`
    it runs again rewrites dagster.yaml but keeps the instance's storage. Returns
    DAGSTER_HOME (the caller checks it is the one dagster_dev used).
    """
    env = {**os.environ, "CLONE_HOME": str(tmp_path / "home"),
           "CLONE_MODELS_DIR": str(models_dir), "DAGSTER_HOME": str(tmp_path / "dagster")}
    for var in ("CLONE_DATABASE_URL", "DAGSTER_POSTGRES_URL"):
        env.pop(var, None)
    subprocess.run([str(BIN / "clone-pipeline"), "init"], env=env, check=True,
                   capture_output=True)
    for name in CHANGE_SENSORS:  # one at a time: both write the same SQLite file
        done = subprocess.run([str(BIN / "dagster"), "sensor", "stop", name, "-w",
                               "workspace.yaml"], cwd=REPO, env=env, capture_output=True,
                              text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    return env["DAGSTER_HOME"]


def _left_queue(instance: dg.DagsterInstance, run_id: str) -> float:
    """When the daemon took the run off the queue (its RUN_STARTING event)."""
    [record] = instance.get_records_for_run(
        run_id=run_id, of_type=dg.DagsterEventType.RUN_STARTING).records
    return record.timestamp


@pytest.mark.slow
def test_second_run_of_a_user_waits_for_the_first(tmp_path, models_dir):
    dagster_home = _stop_change_sensors(tmp_path, models_dir)
    personas = [PERSONAS_DIR / SAME, PERSONAS_DIR / OTHER]
    with dagster_dev(tmp_path, models_dir, personas) as (env, port), \
            dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        assert env["DAGSTER_HOME"] == dagster_home
        stopped = {s.name for s in instance.all_instigator_state()
                   if s.status.value == "STOPPED"}
        assert stopped >= set(CHANGE_SENSORS)
        # what the (stopped) change sensor would have registered
        instance.add_dynamic_partitions("users", [SAME, OTHER])
        wait_for(lambda: code_location_loaded(port), 300, "the code location to load")

        client = DagsterGraphQLClient("127.0.0.1", port_number=port)
        first, second, other = (
            client.submit_job_execution("data_only", tags={"dagster/partition": user})
            for user in (SAME, SAME, OTHER))
        ids = [first, second, other]

        def records() -> dict[str, dg.RunRecord]:
            # one query: the statuses of all three runs at the same moment
            return {r.dagster_run.run_id: r
                    for r in instance.get_run_records(dg.RunsFilter(run_ids=ids))}

        def first_past_starting():
            now = records()
            return now if now[first].dagster_run.status not in (
                dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING) else None

        # a data_only run lasts seconds: polling every 0.2 s sees it while it is STARTED
        seen = wait_for(first_past_starting, 300, "the first run to start", interval=0.2)
        assert seen[first].dagster_run.status == dg.DagsterRunStatus.STARTED
        assert seen[second].dagster_run.status == dg.DagsterRunStatus.QUEUED, \
            "the second run of the same user left the queue while the first was running"

        def all_finished():
            now = records()
            return now if all(r.dagster_run.status in FINISHED for r in now.values()) else None

        done = wait_for(all_finished, 300, "the three runs to finish", interval=0.5)
        assert {rid: r.dagster_run.status for rid, r in done.items()} == dict.fromkeys(
            ids, dg.DagsterRunStatus.SUCCESS)
        # the key assertion: the same user's runs did not overlap
        assert done[second].start_time >= done[first].end_time
        # The other user's run was not queued behind them. The second run could only leave
        # the queue after the whole first run (process start, two assets); the other one
        # leaves at the first dequeue pass after its submission, right after the first run's.
        assert _left_queue(instance, other) < _left_queue(instance, second)
        # nothing else ran: the stopped sensors requested no runs of their own
        assert {r.run_id for r in instance.get_runs()} == set(ids)
