"""Run `dagster dev` so that a normal stop (Ctrl-C, SIGTERM) ends all of it in seconds.

`dagster dev` alone, on SIGTERM, stops its webserver and daemon but not its code server:
Dagster's gRPC server waits for every run it launched to finish before it exits, so run
workers, their step processes and a training child go on for as long as their runs take
(minutes for the demo's runs, hours for a real training). Here `dagster dev` runs in a
process group of its own; a stop sends SIGINT to the whole group, as Ctrl-C in a terminal
does: runs are interrupted (a training child checkpoints at its next step and resumes next
time), and whatever has not exited within the grace period is killed.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from clone_pipeline.processes import end_group

STOP_GRACE_SECONDS = 20.0


def stop_group(process: subprocess.Popen, grace: float = STOP_GRACE_SECONDS) -> float:
    """SIGINT to *process*'s group, as Ctrl-C in a terminal (runs are interrupted and a
    training child checkpoints), SIGKILL to what is left after *grace* seconds; returns
    the seconds until the whole group was gone."""
    return end_group(process, grace, first=signal.SIGINT)


def serve(dev_args: Sequence[str], grace: float = STOP_GRACE_SECONDS) -> int:
    """Run `dagster dev *dev_args*` until it exits or this process gets SIGINT or SIGTERM;
    then stop its whole process group. Returns an exit status."""
    dagster = Path(sys.executable).with_name("dagster")
    process = subprocess.Popen([str(dagster), "dev", *dev_args], start_new_session=True)
    stopping: list[int] = []

    def request_stop(signum, _frame) -> None:
        stopping.append(signum)

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT,
                                                                   signal.SIGTERM)}
    try:
        while process.poll() is None and not stopping:
            time.sleep(0.2)
    finally:
        took = stop_group(process, grace)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if stopping:
        print(f"dagster dev and its runs stopped in {took:.1f} s", file=sys.stderr)
        return 0
    return process.returncode

