"""`clone-pipeline ui` (what `make ui` runs) stops within seconds on SIGTERM, runs in
progress included, and leaves no process behind.

`dagster dev` alone, on SIGTERM, exits but leaves its code server and the run workers it
launched going until their runs finish: Dagster's gRPC server waits for its runs.
"""

import os
import signal
import subprocess
import time

import dagster as dg
import psutil
import pytest

from clone_pipeline.demo import PERSONAS_DIR
from clone_pipeline.launch.dagster_dev import STOP_GRACE_SECONDS
from clone_pipeline.net import free_port
from clone_pipeline.processes import group_alive
from clone_pipeline_tests.test_defs.dagster_dev import BIN, REPO, wait_for


@pytest.mark.slow
def test_sigterm_stops_the_ui_and_its_runs_within_seconds(tmp_path, models_dir):
    env = {**os.environ, "CLONE_HOME": str(tmp_path / "home"),
           "CLONE_MODELS_DIR": str(models_dir), "DAGSTER_HOME": str(tmp_path / "dagster")}
    for var in ("CLONE_DATABASE_URL", "DAGSTER_POSTGRES_URL"):
        env.pop(var, None)
    cli = str(BIN / "clone-pipeline")
    subprocess.run([cli, "import", str(PERSONAS_DIR / "margaret-ellis")], env=env,
                   check=True, capture_output=True)
    with (tmp_path / "ui.log").open("w") as log:
        ui = subprocess.Popen([cli, "ui", "--port", str(free_port())], cwd=REPO, env=env,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
            # The change sensor's first tick launches the user's data run: stop mid-run.
            wait_for(lambda: instance.get_runs(dg.RunsFilter(
                statuses=[dg.DagsterRunStatus.STARTED])), 300, "a run in progress")
            [dev] = psutil.Process(ui.pid).children()  # `dagster dev`, leading its group
            processes = [dev, *dev.children(recursive=True)]  # code server, runs, ...
            asked = time.monotonic()
            ui.send_signal(signal.SIGTERM)
            ui.wait(timeout=STOP_GRACE_SECONDS + 30)
            took = time.monotonic() - asked
            _, alive = psutil.wait_procs(processes, timeout=5)
            assert not alive and not group_alive(dev.pid)  # nothing started later either
            assert ui.returncode == 0 and took < STOP_GRACE_SECONDS + 5
            # The run was interrupted, not left STARTED for run monitoring to find.
            assert not instance.get_runs(dg.RunsFilter(
                statuses=[dg.DagsterRunStatus.STARTED]))
    finally:
        if ui.poll() is None:
            os.killpg(ui.pid, signal.SIGKILL)
