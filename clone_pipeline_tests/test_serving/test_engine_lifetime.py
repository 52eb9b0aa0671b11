"""An engine never outlives the process that started it: all of vLLM's processes (API
server, EngineCore, workers) end when their parent is killed, however it dies."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path


def _group(pgid: int) -> list[tuple[int, int]]:
    """(pid, RSS in kB) of every live process in group *pgid*."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append((int(stat.parent.name), int(fields[21]) * 4))
    return found


def test_killing_the_parent_ends_every_engine_process(local_tiny, tmp_path):
    _model, _tokenizer, path = local_tiny
    parent_code = (
        "import json, sys, time; from pathlib import Path; "
        "from clone_pipeline.engine.process import EngineSpec, start_engine; "
        f"e = start_engine(EngineSpec({str(path)!r}), Path({str(tmp_path / 'engine.log')!r})); "
        "print(json.dumps({'pid': e.process.pid}), flush=True); time.sleep(600)")
    parent = subprocess.Popen([sys.executable, "-c", parent_code], stdout=subprocess.PIPE,
                              text=True)
    try:
        engine_pid = json.loads(parent.stdout.readline())["pid"]
        before = _group(engine_pid)
        assert len(before) >= 3, before  # API server, EngineCore, a worker
        assert sum(rss for _pid, rss in before) > 500_000  # kB: a real engine's memory

        parent.kill()  # SIGKILL: the parent runs no cleanup at all
        parent.wait()
        deadline = time.monotonic() + 30
        while _group(engine_pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _group(engine_pid) == []
    finally:
        parent.kill()
