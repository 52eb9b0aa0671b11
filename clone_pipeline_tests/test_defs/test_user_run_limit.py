"""One run per user at a time: the run queue's per-user limit, end to end.

dagster.yaml limits runs per unique value of the `dagster/partition` run tag, which Dagster
sets on every partitioned run (one user = one partition). On the session's `dagster dev`
(webserver and daemon; the change sensors stopped, so no run but these touches the two
users): two runs for one user and one for another are submitted through the GraphQL API as
the UI does, and Dagster's own run records must show the second run of the same user held
in the queue until the first had finished, while the other user's run was not held behind
them. The runs are of the test-only `run_holder` job (clone_pipeline_tests/
live_definitions.py: partitioned by the real users, no pool), each open for a few seconds:
the limit is the queue's, whatever the run does, and a data run would take a minute.
"""

import dagster as dg
import pytest
from dagster_graphql import DagsterGraphQLClient

from clone_pipeline.launch.names import PARTITION_TAG, USERS_PARTITIONS
from clone_pipeline_tests.live_definitions import RUN_HOLD_JOB, hold_config
from clone_pipeline_tests.test_defs.dagster_dev import CHANGE_SENSORS, FINISHED, wait_for

SAME, OTHER = "limit-margaret", "limit-walter"


def _left_queue(instance: dg.DagsterInstance, run_id: str) -> float:
    """When the daemon took the run off the queue (its RUN_STARTING event)."""
    [record] = instance.get_records_for_run(
        run_id=run_id, of_type=dg.DagsterEventType.RUN_STARTING).records
    return record.timestamp


@pytest.mark.slow
def test_second_run_of_a_user_waits_for_the_first(live_dagster):
    with live_dagster.instance() as instance:
        stopped = {s.name for s in instance.all_instigator_state()
                   if s.status.value == "STOPPED"}
        assert stopped >= set(CHANGE_SENSORS)
        # Partitions only: the held runs read no data, and a user without material gives a
        # change sensor nothing to run.
        instance.add_dynamic_partitions(USERS_PARTITIONS, [SAME, OTHER])

        client = DagsterGraphQLClient("127.0.0.1", port_number=live_dagster.port)
        first, second, other = (
            client.submit_job_execution(RUN_HOLD_JOB, run_config=hold_config(RUN_HOLD_JOB, 5),
                                        tags={PARTITION_TAG: user})
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

        # a run holds for 5 s: polling every 0.2 s sees it while it is STARTED
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
        # the queue after the whole first run (process start, its step); the other one
        # leaves at the first dequeue pass after its submission, right after the first run's.
        assert _left_queue(instance, other) < _left_queue(instance, second)
        # nothing else ran for them: the stopped sensors requested no runs of their own
        assert {r.run_id for user in (SAME, OTHER) for r in instance.get_runs(
            dg.RunsFilter(tags={PARTITION_TAG: user}))} == set(ids)
