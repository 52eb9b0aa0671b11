"""A real `dagster dev` (webserver + daemon) on loopback for end-to-end tests: one per test
session (`LiveDagster`, the `live_dagster` fixture), shared by every test that needs a live
webserver and daemon; each such test works on users (partitions) of its own."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import psutil
import requests
import yaml
from dagster_graphql import DagsterGraphQLClient

from clone_pipeline.demo import PERSONAS_DIR
from clone_pipeline.launch.dagster_dev import stop_group
from clone_pipeline.launch.names import USERS_PARTITIONS
from clone_pipeline.net import free_port
from clone_pipeline.services.ingest import import_export
from clone_pipeline.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# The change sensors request a data run for every imported user within a minute: runs for
# the users under test, under the per-user limit, interleaved with the ones a test submits.
# The shared instance starts with them stopped; test_dagster_dev.py starts one to prove it.
CHANGE_SENSORS = ("user_data_changed", "voice_recordings_changed")
MONITORING_POLL_S = 2
FINISHED = (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE,
            dg.DagsterRunStatus.CANCELED)


def wait_for(predicate, timeout: float, what: str, interval: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


@contextmanager
def dagster_dev(root: Path, env: dict[str, str], workspace: Path,
                stopped_sensors: tuple[str, ...] = ()):
    """`clone-pipeline init` on *env*'s data root, then `dagster dev -w workspace`; yields
    the port once every code location has loaded. *stopped_sensors* are stopped before the
    daemon starts (`dagster sensor stop` writes a STOPPED state the daemon finds by the
    sensor's location, repository and name), so they never tick."""
    cli = str(BIN / "clone-pipeline")
    subprocess.run([cli, "init"], env=env, check=True, capture_output=True)
    # Run monitoring looks every 2 s rather than the project's 15: a killed worker or a run
    # past its max runtime is found within seconds, the same machinery at a shorter period.
    config_file = Path(env["DAGSTER_HOME"]) / "dagster.yaml"
    config = yaml.safe_load(config_file.read_text())
    config["run_monitoring"]["poll_interval_seconds"] = MONITORING_POLL_S
    config_file.write_text(yaml.safe_dump(config))
    for name in stopped_sensors:  # one at a time: they may write the same SQLite file
        done = subprocess.run([str(BIN / "dagster"), "sensor", "stop", name, "-w",
                               str(workspace)], cwd=REPO, env=env, capture_output=True,
                              text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    port = free_port()
    with (root / "dagster-dev.log").open("w") as log:
        server = subprocess.Popen(
            [str(BIN / "dagster"), "dev", "-w", str(workspace), "-h", "127.0.0.1",
             "-p", str(port)], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        try:
            wait_for(lambda: code_location_loaded(port), 300, "the code location to load")
            yield port
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


class LiveDagster:
    """The session's `dagster dev` on a session data root, started on first use.

    It serves the project's definitions plus one test-only job
    (clone_pipeline_tests/live_definitions.py), with Dagster's storage in PostgreSQL when
    *postgres_url* is given (CI always), else SQLite; the GPU pool starts with one slot and
    the change sensors stopped. A test that needs a clean world adds users of its own
    (`add_user`) instead of starting an instance of its own.
    """

    def __init__(self, root: Path, models_dir: Path, postgres_url: str | None):
        self.root = root
        self.env = {**os.environ, "CLONE_HOME": str(root / "home"),
                    "CLONE_MODELS_DIR": str(models_dir), "DAGSTER_HOME": str(root / "dagster"),
                    "CLONE_GPU_SLOTS": "1"}
        for var in ("CLONE_DATABASE_URL", "DAGSTER_POSTGRES_URL", "CLONE_DAGSTER_URL"):
            self.env.pop(var, None)
        if postgres_url:
            self.env["DAGSTER_POSTGRES_URL"] = postgres_url
        self._context = None
        self.port = 0

    def start(self) -> None:
        workspace = self.root / "workspace.yaml"
        workspace.write_text(yaml.safe_dump({"load_from": [{"python_module": {
            "module_name": "clone_pipeline_tests.live_definitions", "attribute": "defs",
            "working_directory": str(REPO)}}]}))
        self._context = dagster_dev(self.root, self.env, workspace, CHANGE_SENSORS)
        self.port = self._context.__enter__()
        self.env["CLONE_DAGSTER_URL"] = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self._context is not None:
            context, self._context = self._context, None
            context.__exit__(None, None, None)

    def cancel_unfinished(self) -> None:
        """Cancel whatever a test left queued or running (a failed one, say): the next test
        starts from a quiet instance."""
        with self.instance() as instance:
            left = [r.run_id for r in instance.get_runs(dg.RunsFilter(statuses=[
                dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING,
                dg.DagsterRunStatus.STARTED]))]
            if left:
                DagsterGraphQLClient("127.0.0.1", port_number=self.port).terminate_runs(left)
                wait_for(lambda: all(instance.get_run_by_id(r).status in FINISHED
                                     for r in left), 120, "the left-over runs to end")

    @property
    def settings(self) -> Settings:
        return load_settings(self.env)

    @contextmanager
    def instance(self):
        with dg.DagsterInstance.from_config(self.env["DAGSTER_HOME"]) as instance:
            yield instance

    def add_user(self, instance: dg.DagsterInstance, persona: str, external_id: str,
                 recordings: bool = False, partition: bool = True) -> str:
        """Import demo *persona* as a new user *external_id* (her recordings only when
        asked) and add the partition the stopped change sensor would add (unless not)."""
        folder = self.root / "exports" / external_id
        folder.mkdir(parents=True)
        doc = json.loads((PERSONAS_DIR / persona / "export.json").read_text(encoding="utf-8"))
        doc["user"]["external_id"] = external_id
        if recordings:
            shutil.copytree(PERSONAS_DIR / persona / "audio", folder / "audio")
        else:
            doc["voice_recordings"] = []
        (folder / "export.json").write_text(json.dumps(doc, ensure_ascii=False),
                                            encoding="utf-8")
        import_export(folder, self.settings)
        if partition:
            instance.add_dynamic_partitions(USERS_PARTITIONS, [external_id])
        return external_id


def run_worker(instance: dg.DagsterInstance, run_id: str) -> psutil.Process:
    """The run's worker process, from the pid Dagster records when it starts it."""
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        found = re.search(r"Started process for run \(pid: (\d+)\)", entry.message or "")
        if found:
            return psutil.Process(int(found.group(1)))
    raise AssertionError(f"run {run_id} recorded no worker pid")


def training_child(instance: dg.DagsterInstance, run_id: str) -> psutil.Process | None:
    """The run's training child (under its worker, whatever step process sits between)."""
    try:
        below = run_worker(instance, run_id).children(recursive=True)
    except (AssertionError, psutil.Error):
        return None  # not started yet, or already gone
    for process in below:
        try:
            if "clone_pipeline.training.pipes_main" in " ".join(process.cmdline()):
                return process
        except psutil.Error:
            continue
    return None


def gone(process: psutil.Process) -> bool:
    """The process has exited (a zombie awaiting its parent counts as exited)."""
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def why_failed(instance: dg.DagsterInstance, run_id: str) -> str:
    """A run's failure and error events, for an assertion's message."""
    lines = []
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        error = entry.error_info or getattr(event and event.event_specific_data, "error", None)
        if error or (event and event.event_type in (dg.DagsterEventType.RUN_FAILURE,
                                                    dg.DagsterEventType.STEP_FAILURE)):
            lines.append(f"{entry.message} {error.to_string() if error else ''}")
    return "\n".join(lines)[-4000:]
