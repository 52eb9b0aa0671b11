"""A real `dagster dev` (webserver + daemon) on loopback for end-to-end tests."""

import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import requests

from clone_pipeline.launch.dagster_dev import stop_group
from clone_pipeline.net import free_port

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def wait_for(predicate, timeout: float, what: str, interval: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


@contextmanager
def dagster_dev(tmp_path: Path, models_dir: Path, exports: list[Path],
                extra_env: dict[str, str] | None = None, stopped_sensors: tuple[str, ...] = (),
                prepare=None):
    """Init a fresh data root, import *exports*, run `dagster dev`; yield (env, port).

    *extra_env* (DAGSTER_POSTGRES_URL, say) is set for every command; *stopped_sensors* are
    stopped before the daemon starts, so they never tick; *prepare(env)* runs last before
    the server starts (in-process runs, say).
    """
    env = {**os.environ, "CLONE_HOME": str(tmp_path / "home"),
           "CLONE_MODELS_DIR": str(models_dir), "DAGSTER_HOME": str(tmp_path / "dagster")}
    for var in ("CLONE_DATABASE_URL", "DAGSTER_POSTGRES_URL", "CLONE_DAGSTER_URL"):
        env.pop(var, None)
    env.update(extra_env or {})
    cli = str(BIN / "clone-pipeline")
    subprocess.run([cli, "init"], env=env, check=True, capture_output=True)
    subprocess.run([cli, "import", *map(str, exports)], env=env, check=True,
                   capture_output=True)
    for name in stopped_sensors:  # one at a time: they may write the same SQLite file
        done = subprocess.run([str(BIN / "dagster"), "sensor", "stop", name, "-w",
                               "workspace.yaml"], cwd=REPO, env=env, capture_output=True,
                              text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    if prepare is not None:
        prepare(env)
    port = free_port()
    env["CLONE_DAGSTER_URL"] = f"http://127.0.0.1:{port}"
    with (tmp_path / "dagster-dev.log").open("w") as log:
        server = subprocess.Popen(
            [str(BIN / "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1",
             "-p", str(port)], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        try:
            yield env, port
        finally:
            stop_group(server)  # the code server and run workers too, not only dagster dev


def code_location_loaded(port: int) -> bool:
    """The webserver is up and every code location loaded (an error in one fails the test)."""
    query = ("{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
             "locationOrLoadError { __typename ... on PythonError { message } } } } } }")
    try:
        reply = requests.post(f"http://127.0.0.1:{port}/graphql", json={"query": query},
                              timeout=30).json()
    except (requests.RequestException, ValueError):
        return False  # the webserver is not up yet
    entries = (reply.get("data") or {}).get("workspaceOrError", {}).get("locationEntries")
    if not entries or any(e["loadStatus"] != "LOADED" for e in entries):
        return False
    errors = [e["locationOrLoadError"] for e in entries
              if e["locationOrLoadError"]["__typename"] != "RepositoryLocation"]
    assert not errors, errors
    return True
