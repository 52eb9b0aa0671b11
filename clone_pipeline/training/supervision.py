"""A training child's life, both halves: the launching process starts it on GPUs of its own,
watches it, and stops it (a checkpoint first, then a kill), and the child stops at its next
step boundary when signalled. The child dies with whatever started it, however that dies (a
SIGKILLed worker's child checkpoints and exits: the parent-death signal)."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence

from clone_pipeline.processes import die_with_parent
from clone_pipeline.training.devices import lease_gpus, visible_devices

STOP_GRACE_SECONDS = 30  # a stopped child must checkpoint and exit within this
POLL_SECONDS = 1.0


def stop_on_signals() -> threading.Event:
    """In the child: an event SIGINT or SIGTERM sets; the trainer stops at its next step
    boundary."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def run_child(command: Sequence[str], env: dict[str, str], processes: int, gpus: int,
              on_tick: Callable[[], None], log: Callable[[str], None],
              grace: float = STOP_GRACE_SECONDS) -> int:
    """Run *command* with *env* added to this environment until it exits, calling *on_tick*
    about once a second, and return its exit code.

    It trains on *processes* of the machine's *gpus*, leased so that runs sharing the
    machine get GPUs of their own (unless the environment has already chosen them, as a
    Kubernetes GPU pod's does). Whatever ends the wait early (an exception from *on_tick*,
    such as a terminated Dagster run's interruption) stops the child first, so the GPU is
    always freed: SIGINT, and SIGKILL if it has not exited within *grace* seconds.
    """
    available = 0 if "CUDA_VISIBLE_DEVICES" in os.environ else gpus
    with lease_gpus(processes if available else 0, available) as leased:
        if leased:
            log(f"training on GPU {', '.join(map(str, leased))}")
        child = subprocess.Popen(list(command),
                                 env={**os.environ, **env, **visible_devices(leased)},
                                 preexec_fn=die_with_parent)
        try:
            while child.poll() is None:
                time.sleep(POLL_SECONDS)
                on_tick()
        finally:
            if child.poll() is None:
                stop(child, grace)
    return child.returncode


def stop(child: subprocess.Popen, grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGINT (the child checkpoints at its next step boundary), SIGKILL after *grace*."""
    child.send_signal(signal.SIGINT)
    try:
        child.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
