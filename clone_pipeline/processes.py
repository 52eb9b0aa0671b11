"""Child processes that never outlive what started them: the parent-death signal, and ending
a child's whole process group (vLLM's API server leaves its EngineCore and workers running if
only the leader is stopped)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time

PR_SET_PDEATHSIG = 1  # prctl option: the signal a process gets when its parent dies
# looked up here, not between fork and exec, where loading a library could deadlock
_prctl = ctypes.CDLL(None).prctl if sys.platform.startswith("linux") else None


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """A ``preexec_fn``: the child gets *sig* when the process that started it dies, however
    it dies (Linux's parent-death signal; elsewhere only an orderly stop ends the child)."""
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, sig)


def group_alive(pgid: int) -> bool:
    """Whether any process of the process group is still running (zombies count as gone)."""
    import psutil

    for process in psutil.process_iter(["status"]):
        try:
            if process.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(process.pid) == pgid:
                return True
        except (ProcessLookupError, psutil.Error):
            continue
    return False


def end_group(process: subprocess.Popen, grace: float, first: int = signal.SIGTERM) -> float:
    """Send *first* to the process group *process* leads (started with
    ``start_new_session``), then SIGKILL whatever of it is left after *grace* seconds;
    returns the seconds until the whole group was gone. It acts even when the leader has
    already died: its children may not have."""
    started = time.monotonic()
    for sig, wait in ((first, grace), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            process.poll()  # reap the leader, so it does not linger as a zombie
            if not group_alive(process.pid):
                return time.monotonic() - started
            time.sleep(0.05)
    return time.monotonic() - started
