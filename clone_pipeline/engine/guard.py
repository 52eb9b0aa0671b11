"""Leads an engine's process group, run as a script (``python guard.py COMMAND...``, stdlib
only): it starts the engine's API server in its group and ends the whole group (API server,
EngineCore, workers) when the API server exits, when it is told to stop (SIGTERM, SIGINT,
SIGHUP) or when the process that started it dies (the parent-death signal it is started with).

The API server alone is not enough: SIGKILLed, it leaves its EngineCore and workers running,
and while it starts it does not act on the SIGTERM of a parent-death signal (measured: a
parent killed 10 s into an engine's start left all three processes running).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

GRACE_S = 20.0  # told to stop: SIGTERM first, SIGKILL to what is left after this
# The API server gone, its EngineCore and workers serve nobody: SIGKILL after this.
ORPHANS_GRACE_S = 2.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class Stop(Exception):
    pass


def _stop(_signum, _frame) -> None:
    raise Stop


def processes() -> list[tuple[int, int, int, int]]:
    """(pid, parent pid, process group, RSS in kB) of every live process, from /proc."""
    page_kb = os.sysconf("SC_PAGE_SIZE") // 1024
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            found.append((int(stat.parent.name), int(fields[1]), int(fields[2]),
                          int(fields[21]) * page_kb))
    return found


def others() -> list[int]:
    """The live processes of this one's group, but this one."""
    me, group = os.getpid(), os.getpgid(0)
    return [pid for pid, _ppid, pgid, _rss in processes() if pgid == group and pid != me]


def end_group(engine: subprocess.Popen | None, grace: float) -> None:
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        deadline = time.monotonic() + wait
        for pid in others():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        while time.monotonic() < deadline:
            if engine is not None:
                engine.poll()  # reap the API server, so it does not linger as a zombie
            if not others():
                return
            time.sleep(0.05)


def main(command: list[str]) -> int:
    """The API server's exit code (negative: the signal that ended it)."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, _stop)
    prctl = ctypes.CDLL(None).prctl  # looked up before the fork (see processes.py)
    engine, grace = None, GRACE_S
    with contextlib.suppress(Stop):
        # The API server gets the parent-death signal too: should the guard itself be
        # SIGKILLed, a running API server still stops its EngineCore and workers.
        engine = subprocess.Popen(command, preexec_fn=lambda: prctl(1, signal.SIGTERM))
        engine.wait()
        grace = ORPHANS_GRACE_S
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    end_group(engine, grace)
    return engine.wait() if engine is not None else -signal.SIGTERM


if __name__ == "__main__":
    code = main(sys.argv[1:])
    if code < 0:  # die as the API server died, so whoever watches sees the same signal
        with contextlib.suppress(OSError, ValueError):  # SIGKILL keeps its default
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code)
