"""End to end: `dagster dev` (webserver + daemon) picks up imported users by itself.

The change sensor registers both users as partitions and requests runs; the daemon's queue
launches them in their own processes; both runs succeed, the ready user's with every asset
and the other's stopped after collection by the readiness check (formatting skipped, not
failed). The UI's GraphQL API shows the per-user partitions.
"""

import dagster as dg
import pytest
import requests

from clone_pipeline.demo import PERSONAS_DIR
from clone_pipeline_tests.test_defs.dagster_dev import dagster_dev, wait_for


@pytest.mark.slow
def test_daemon_sensor_runs_users_and_ui_shows_partitions(tmp_path, models_dir):
    personas = [PERSONAS_DIR / "margaret-ellis", PERSONAS_DIR / "rosa-delgado"]
    with dagster_dev(tmp_path, models_dir, personas) as (env, port), \
            dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        def finished():
            runs = instance.get_runs(dg.RunsFilter(job_name="data_only"))
            done = {r.tags.get("dagster/partition"): r.status for r in runs
                    if r.status in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE)}
            return done if len(done) == 2 else None

        statuses = wait_for(finished, 300, "sensor-launched runs to finish")
        assert statuses == {"margaret-ellis": dg.DagsterRunStatus.SUCCESS,
                            "rosa-delgado": dg.DagsterRunStatus.SUCCESS}

        query = "{ assetNodes { assetKey { path } partitionKeys } }"
        reply = requests.post(f"http://127.0.0.1:{port}/graphql", json={"query": query},
                              timeout=30).json()
        nodes = {n["assetKey"]["path"][-1]: n["partitionKeys"]
                 for n in reply["data"]["assetNodes"]}
        assert set(nodes) >= {"collected_training_data", "formatted_datasets"}
        assert sorted(nodes["collected_training_data"]) == ["margaret-ellis", "rosa-delgado"]
