"""Child processes that never outlive what started them: the parent-death signal, and ending
a child's whole process group (vLLM's API server leaves its EngineCore and workers running if
only the leader is stopped)."""

from __future__ import annotations

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
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def end_group(process: subprocess.Popen, grace: float) -> None:
    """SIGTERM the process group *process* leads (started with ``start_new_session``), then
    SIGKILL whatever of it is left after *grace* seconds; returns once the group is gone. It
    acts even when the leader has already died: its children may not have."""
    pgid = process.pid
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            process.poll()
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            process.poll()  # reap the leader, or the group never looks empty
            if not group_alive(pgid):
                return
            time.sleep(0.05)
