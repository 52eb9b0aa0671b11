"""`clone-pipeline serve` owns its engine's life, on real processes: a SIGKILLed engine is
restarted (its leftover EngineCore and workers ended) with the deployments restored while
the gateway answers 503 with Retry-After; and however `serve` ends (SIGKILL, SIGTERM, Ctrl-C
while the engine is still starting), no process of its engine's group is left. Each test
starts one `serve` (an engine start is about half a minute on two cores)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from clone_pipeline.engine.guard import processes
from clone_pipeline.net import free_port
from clone_pipeline.services.deployments import deploy_model
from clone_pipeline.services.engine import connect, state_file
from clone_pipeline.services.tokens import create_token
from clone_pipeline.serving.errors import ENGINE_RETRY_AFTER_S

pytestmark = pytest.mark.slow


def _group(pgid: int) -> list[tuple[int, int]]:
    """(pid, RSS in kB) of every live process in group *pgid*."""
    return [(pid, rss) for pid, _ppid, group, rss in processes() if group == pgid]


def _names(pgid: int) -> list[str]:
    names = []
    for pid, _rss in _group(pgid):
        try:
            names.append(Path(f"/proc/{pid}/comm").read_text().strip())
        except OSError:
            continue
    return names


def _pss_mb(group: list[tuple[int, int]]) -> float:
    """The group's proportional memory (shared pages split between their users), in MB."""
    total = 0
    for pid, _rss in group:
        try:
            lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
        except OSError:
            continue
        total += sum(int(line.split()[1]) for line in lines if line.startswith("Pss:"))
    return total / 1024


def _wait(condition: Callable[[], object], timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, f"waited {timeout:.0f} s for {what}"
        time.sleep(0.2)
    return found


class Serve:
    """`clone-pipeline serve` over local-tiny for a data root, as a user starts it."""

    def __init__(self, settings, log: Path):
        self.settings, self.log, self.port = settings, log, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "CLONE_HOME": str(settings.home),
               "CLONE_MODELS_DIR": str(settings.models_dir),
               "DAGSTER_HOME": str(settings.dagster_home), "PYTHONUNBUFFERED": "1"}
        with open(log, "w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "clone_pipeline.cli", "serve", "--port", str(self.port),
                 "--base-model", "local-tiny"], env=env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL)

    def said(self, text: str) -> int:
        return self.log.read_text().count(text)

    def ready(self) -> bool:
        assert self.process.poll() is None, self.log.read_text()
        try:
            return httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def engine_pid(self) -> int:
        """The engine's guard (the leader of its process group), as serve records it."""
        return json.loads(state_file(self.settings).read_text())["pid"]

    def engine_group(self) -> list[tuple[int, int]]:
        """The engine's whole group: its guard, API server, EngineCore and workers."""
        return _group(self.engine_pid())

    def chat(self, token: str, model: str) -> httpx.Response:
        return httpx.post(f"{self.url}/v1/chat/completions", timeout=120,
                          headers={"Authorization": f"Bearer {token}"},
                          json={"model": model, "max_tokens": 4,
                                "messages": [{"role": "user", "content": "Hello"}]})

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


@pytest.fixture
def serve(serving_root, tmp_path):
    started = Serve(serving_root.settings, tmp_path / "serve.log")
    try:
        yield started
    finally:
        started.stop()


def _a_real_engine(group: list[tuple[int, int]]) -> None:
    assert len(group) >= 4, group  # guard, API server, EngineCore, a worker
    assert sum(rss for _pid, rss in group) > 500_000, group  # kB: a real engine's memory


def _report(what: str, group: list[tuple[int, int]]) -> None:
    print(f"{what}: {len(group)} engine processes, "
          f"{sum(rss for _pid, rss in group) / 1024:.0f} MB RSS, {_pss_mb(group):.0f} MB PSS")


def test_a_killed_engine_is_restarted_with_its_deployments_and_dies_with_a_killed_serve(
        serve):
    _wait(serve.ready, 300, "serve to start")
    deployment = deploy_model(serve.settings, connect(serve.settings), "person-03")
    token, _ = create_token(serve.settings, "person-03", expires_in_days=1)
    assert serve.chat(token, deployment.name).status_code == 200

    first = serve.engine_pid()
    killed = serve.engine_group()
    _a_real_engine(killed)
    _report("before the engine's API server is killed", killed)
    (api_server,) = [pid for pid, ppid, _group_id, _rss in processes() if ppid == first]
    os.kill(api_server, signal.SIGKILL)
    killed_at = time.monotonic()

    down = serve.chat(token, deployment.name)  # at once: the restart takes half a minute
    assert down.status_code == 503, down.text
    assert down.headers["Retry-After"] == str(ENGINE_RETRY_AFTER_S)
    assert down.json()["error"]["message"] == "the inference engine is not reachable"
    readyz = httpx.get(f"{serve.url}/readyz")
    assert readyz.status_code == 503 and readyz.headers["Retry-After"]

    _wait(lambda: serve.said("restored 1 active deployment(s)") == 1
          and serve.said("the engine is back") == 1, 300, "the engine's restart")
    print(f"the engine was back with its deployment {time.monotonic() - killed_at:.0f} s "
          f"after its API server was killed")
    assert serve.said(f"the engine (pid {first}) exited with code -9") == 1
    assert serve.engine_pid() != first
    assert _group(first) == []  # the killed API server's EngineCore and workers too
    answer = serve.chat(token, deployment.name)
    assert answer.status_code == 200, answer.text
    second = serve.engine_pid()
    restarted = _group(second)
    _a_real_engine(restarted)
    _report("after the restart", restarted)

    # The restarted engine was started by serve's watcher thread: it too dies with serve.
    serve.process.kill()  # SIGKILL: serve runs no cleanup at all
    serve.process.wait()
    killed_at = time.monotonic()
    _wait(lambda: _group(second) == [], 30, "the engine to die with serve")
    print(f"SIGKILL of serve: no engine process left after {time.monotonic() - killed_at:.1f} s")


def test_sigterm_stops_the_gateway_and_every_engine_process(serve):
    _wait(serve.ready, 300, "serve to start")
    pgid = serve.engine_pid()
    running = _group(pgid)
    _a_real_engine(running)
    _report("before SIGTERM", running)

    serve.process.send_signal(signal.SIGTERM)  # what docker stop, systemd, Kubernetes send
    sent = time.monotonic()
    assert serve.process.wait(timeout=60) == 128 + signal.SIGTERM
    print(f"SIGTERM: serve exited after {time.monotonic() - sent:.1f} s")
    assert _group(pgid) == []  # gone by the time serve has exited
    assert not state_file(serve.settings).exists()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{serve.url}/healthz")


def test_ctrl_c_while_the_engine_starts_leaves_no_engine_process(serve):
    def engine_starting() -> int | None:
        """The engine's group once its API server has started its EngineCore."""
        assert serve.process.poll() is None, serve.log.read_text()
        leaders = [pid for pid, ppid, _group_id, _rss in processes()
                   if ppid == serve.process.pid]
        return leaders[0] if leaders and "VLLM::EngineCor" in _names(leaders[0]) else None

    pgid = _wait(engine_starting, 120, "the engine's EngineCore")
    assert not serve.ready()
    _report("while starting, before Ctrl-C", _group(pgid))
    serve.process.send_signal(signal.SIGINT)
    sent = time.monotonic()
    serve.process.wait(timeout=60)
    print(f"Ctrl-C while starting: serve exited after {time.monotonic() - sent:.1f} s")
    assert _group(pgid) == []
