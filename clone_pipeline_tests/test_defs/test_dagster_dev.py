"""End to end: `dagster dev` (webserver + daemon) picks up imported users by itself.

The change sensor registers both users as partitions and requests runs; the daemon's queue
launches them in their own processes; the ready user's run succeeds and the other's is
stopped by the blocking readiness check. The UI's GraphQL API shows the per-user partitions.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import requests

from clone_pipeline.demo import PERSONAS_DIR

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_daemon_sensor_runs_users_and_ui_shows_partitions(tmp_path, models_dir):
    env = {**os.environ, "CLONE_HOME": str(tmp_path / "home"),
           "CLONE_MODELS_DIR": str(models_dir), "DAGSTER_HOME": str(tmp_path / "dagster")}
    for var in ("CLONE_DATABASE_URL", "DAGSTER_POSTGRES_URL"):
        env.pop(var, None)
    cli = [str(BIN / "clone-pipeline")]
    subprocess.run([*cli, "init"], env=env, check=True, capture_output=True)
    subprocess.run([*cli, "import", str(PERSONAS_DIR / "margaret-ellis"),
                    str(PERSONAS_DIR / "rosa-delgado")], env=env, check=True,
                   capture_output=True)

    port = _free_port()
    log = (tmp_path / "dagster-dev.log").open("w")
    server = subprocess.Popen(
        [str(BIN / "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1",
         "-p", str(port)], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    try:
        with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
            def finished():
                runs = instance.get_runs(dg.RunsFilter(job_name="data_only"))
                done = {r.tags.get("dagster/partition"): r.status for r in runs
                        if r.status in (dg.DagsterRunStatus.SUCCESS,
                                        dg.DagsterRunStatus.FAILURE)}
                return done if len(done) == 2 else None

            statuses = _wait(finished, 300, "sensor-launched runs to finish")
        assert statuses == {"margaret-ellis": dg.DagsterRunStatus.SUCCESS,
                            "rosa-delgado": dg.DagsterRunStatus.FAILURE}

        query = "{ assetNodes { assetKey { path } partitionKeys } }"
        reply = requests.post(f"http://127.0.0.1:{port}/graphql", json={"query": query},
                              timeout=30).json()
        nodes = {n["assetKey"]["path"][-1]: n["partitionKeys"]
                 for n in reply["data"]["assetNodes"]}
        assert set(nodes) >= {"collected_training_data", "formatted_datasets"}
        assert sorted(nodes["collected_training_data"]) == ["margaret-ellis", "rosa-delgado"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()
