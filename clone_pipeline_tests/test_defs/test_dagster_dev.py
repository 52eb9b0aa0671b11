"""End to end: `dagster dev` (webserver + daemon) picks up imported users by itself.

On the session's `dagster dev`, whose change sensor is stopped so that the other tests' users
stay still, the sensor is started through the GraphQL API as the UI's toggle does. It
registers both new users as partitions and requests runs; the daemon's queue launches them
in their own processes; both runs succeed, the ready user's with every asset and the other's
stopped after collection by the readiness check (formatting skipped, not failed). The UI's
GraphQL API shows the per-user partitions. (That the sensor runs by default on a fresh
instance is proven by test_ui_stop.py, whose run in progress is the sensor's.)
"""

import dagster as dg
import pytest
import requests

from clone_pipeline.defs.sensors import user_data_changed
from clone_pipeline.launch.names import DATA_ONLY, PARTITION_TAG, USERS_PARTITIONS
from clone_pipeline_tests.test_defs.dagster_dev import FINISHED, wait_for, why_failed

READY, NOT_READY = "sensor-margaret", "sensor-rosa"
SENSORS = """{ repositoriesOrError { ... on RepositoryConnection { nodes {
  name location { name } sensors { name sensorState { id status } } } } } }"""
START = """mutation Start($selector: SensorSelector!) { startSensor(sensorSelector: $selector) {
  __typename ... on Sensor { sensorState { status } } ... on PythonError { message } } }"""
STOP = """mutation Stop($id: String!) { stopSensor(id: $id) {
  __typename ... on StopSensorMutationResult { instigationState { status } }
  ... on PythonError { message } } }"""


def _graphql(port: int, query: str, variables: dict | None = None) -> dict:
    reply = requests.post(f"http://127.0.0.1:{port}/graphql", timeout=30,
                          json={"query": query, "variables": variables or {}}).json()
    assert not reply.get("errors"), reply["errors"]
    return reply["data"]


def _sensor(port: int, name: str) -> tuple[dict, dict]:
    """(its selector, its state) as the UI reads them."""
    for repo in _graphql(port, SENSORS)["repositoriesOrError"]["nodes"]:
        for sensor in repo["sensors"]:
            if sensor["name"] == name:
                return ({"repositoryLocationName": repo["location"]["name"],
                         "repositoryName": repo["name"], "sensorName": name},
                        sensor["sensorState"])
    raise AssertionError(f"no sensor {name}")


@pytest.mark.slow
def test_daemon_sensor_runs_users_and_ui_shows_partitions(live_dagster):
    port = live_dagster.port
    with live_dagster.instance() as instance:
        for persona, user in (("margaret-ellis", READY), ("rosa-delgado", NOT_READY)):
            live_dagster.add_user(instance, persona, user, partition=False)
        assert not {READY, NOT_READY} & set(instance.get_dynamic_partitions(USERS_PARTITIONS))

        selector, state = _sensor(port, user_data_changed.name)
        assert state["status"] == "STOPPED"
        started = _graphql(port, START, {"selector": selector})["startSensor"]
        assert started["__typename"] == "Sensor", started
        try:
            def finished():
                runs = instance.get_runs(dg.RunsFilter(job_name=DATA_ONLY))
                done = {r.tags.get(PARTITION_TAG): r.status for r in runs
                        if r.status in FINISHED}
                return done if {READY, NOT_READY} <= set(done) else None

            wait_for(finished, 300, "sensor-launched runs to finish")
        finally:
            _, state = _sensor(port, user_data_changed.name)
            stopped = _graphql(port, STOP, {"id": state["id"]})["stopSensor"]
            assert stopped["__typename"] == "StopSensorMutationResult", stopped
            # a run it requested for another test's unmaterialised user ends here too
            wait_for(lambda: all(r.status in FINISHED for r in instance.get_runs(
                dg.RunsFilter(tags={"dagster/sensor_name": user_data_changed.name}))),
                     300, "every run the sensor requested to finish")
        for user in (READY, NOT_READY):
            [run] = instance.get_runs(dg.RunsFilter(tags={PARTITION_TAG: user}))
            assert run.status == dg.DagsterRunStatus.SUCCESS, why_failed(instance, run.run_id)
            assert run.tags["dagster/sensor_name"] == user_data_changed.name

        reply = requests.post(f"http://127.0.0.1:{port}/graphql", timeout=30, json={
            "query": "{ assetNodes { assetKey { path } partitionKeys } }"}).json()
        nodes = {n["assetKey"]["path"][-1]: n["partitionKeys"]
                 for n in reply["data"]["assetNodes"]}
        assert set(nodes) >= {"collected_training_data", "formatted_datasets"}
        assert {READY, NOT_READY} <= set(nodes["collected_training_data"])
