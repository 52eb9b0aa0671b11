"""A real `dagster dev` (webserver + daemon) on loopback for end-to-end tests."""

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from clone_pipeline.orchestration.serve import stop_group

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, interval: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


@contextmanager
def dagster_dev(tmp_path: Path, models_dir: Path, exports: list[Path]):
    """Init a fresh data root, import *exports*, run `dagster dev`; yield (env, port)."""
    env = {**os.environ, "CLONE_HOME": str(tmp_path / "home"),
           "CLONE_MODELS_DIR": str(models_dir), "DAGSTER_HOME": str(tmp_path / "dagster")}
    for var in ("CLONE_DATABASE_URL", "DAGSTER_POSTGRES_URL"):
        env.pop(var, None)
    cli = str(BIN / "clone-pipeline")
    subprocess.run([cli, "init"], env=env, check=True, capture_output=True)
    subprocess.run([cli, "import", *map(str, exports)], env=env, check=True,
                   capture_output=True)
    port = free_port()
    with (tmp_path / "dagster-dev.log").open("w") as log:
        server = subprocess.Popen(
            [str(BIN / "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1",
             "-p", str(port)], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        try:
            yield env, port
        finally:
            stop_group(server)  # the code server and run workers too, not only dagster dev
