"""Children never outlive what started them: the parent-death signal and whole-group stops
(clone_pipeline/processes.py), and the engine's guard (engine/guard.py), on real process
trees."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from clone_pipeline.engine import guard
from clone_pipeline.processes import end_group, group_alive

# A group leader that starts a sleeping grandchild in its own group and prints its pid.
_TREE = ("import subprocess, sys, time; "
         "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']); "
         "print(c.pid, flush=True); time.sleep(120)")


def _gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_end_group_ends_the_children_of_a_leader_that_already_died():
    leader = subprocess.Popen([sys.executable, "-c", _TREE], stdout=subprocess.PIPE,
                              text=True, start_new_session=True)
    grandchild = int(leader.stdout.readline())
    os.kill(leader.pid, signal.SIGKILL)  # what a crash does to vLLM's API server
    leader.wait()
    assert group_alive(leader.pid)  # its child lives on in the group: the old leak

    end_group(leader, grace=5.0)
    assert not group_alive(leader.pid)
    assert _gone(grandchild)


def test_a_child_started_with_die_with_parent_ends_when_its_parent_is_killed():
    parent_code = (
        "import subprocess, sys, time; "
        "from clone_pipeline.processes import die_with_parent; "
        "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'], "
        "preexec_fn=die_with_parent); print(c.pid, flush=True); time.sleep(120)")
    parent = subprocess.Popen([sys.executable, "-c", parent_code], stdout=subprocess.PIPE,
                              text=True)
    child = int(parent.stdout.readline())
    parent.kill()  # SIGKILL: no handler, no finally runs in the parent
    parent.wait()
    assert _gone(child)


# engine/guard.py runs the engine's API server; here it runs _TREE in its place.
_GUARDED = [sys.executable, str(Path(guard.__file__)), sys.executable, "-c", _TREE]


def _children(pid: int) -> list[int]:
    return [p.pid for p in psutil.Process(pid).children()]


def test_the_engine_guard_ends_its_group_and_dies_alike_when_the_engine_is_killed():
    guarded = subprocess.Popen(_GUARDED, stdout=subprocess.PIPE, text=True,
                               start_new_session=True)
    grandchild = int(guarded.stdout.readline())
    (engine,) = _children(guarded.pid)
    os.kill(engine, signal.SIGKILL)  # a crashed API server: its EngineCore would live on
    assert guarded.wait(timeout=30) == -signal.SIGKILL  # what the engine's watcher sees
    assert _gone(grandchild)
    assert not group_alive(guarded.pid)


def test_the_engine_guard_ends_its_group_when_its_parent_is_killed():
    parent_code = (
        "import subprocess, sys, time; "
        "from clone_pipeline.processes import die_with_parent; "
        f"g = subprocess.Popen({_GUARDED!r}, stdout=subprocess.PIPE, text=True, "
        "start_new_session=True, preexec_fn=die_with_parent); "
        "print(g.pid, g.stdout.readline().strip(), flush=True); time.sleep(120)")
    parent = subprocess.Popen([sys.executable, "-c", parent_code], stdout=subprocess.PIPE,
                              text=True)
    guard_pid, grandchild = map(int, parent.stdout.readline().split())
    parent.kill()  # SIGKILL: no handler, no finally runs in the parent
    parent.wait()
    assert _gone(grandchild)
    assert _gone(guard_pid)
    assert not group_alive(guard_pid)
