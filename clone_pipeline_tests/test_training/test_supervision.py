"""The launching process's half of a training child's life: it runs on GPUs of its own, and
whatever ends the wait stops it, politely first (SIGINT: the child checkpoints), by force
after the grace period."""

import os
import signal
import sys
import time

import pytest

from clone_pipeline.training.supervision import run_child, stop_on_signals

# A child that reports which GPUs it sees, then waits for SIGINT and says it stopped cleanly.
CHILD = """
import os, sys, time
from pathlib import Path
from clone_pipeline.training.supervision import stop_on_signals
out = Path(sys.argv[1])
stop = stop_on_signals()
out.with_suffix(".gpus").write_text(os.environ.get("CUDA_VISIBLE_DEVICES", "none"))
while not stop.wait(0.05):
    pass
out.write_text("checkpointed")
"""
STUBBORN = "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(60)"


class Interrupted(Exception):
    """Stands in for Dagster's DagsterExecutionInterruptedError."""


def test_a_child_that_finishes_returns_its_exit_code_and_is_watched_meanwhile():
    ticks = []
    code = run_child([sys.executable, "-c", "import time; time.sleep(1.5); raise SystemExit(3)"],
                     {}, processes=1, gpus=0, on_tick=lambda: ticks.append(1), log=print)
    assert code == 3 and ticks


def test_an_interruption_stops_the_child_at_a_checkpoint_on_its_own_gpu(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr("clone_pipeline.training.devices.lock_dir", lambda: tmp_path / "locks")
    out = tmp_path / "child.txt"

    def interrupt_once_started() -> None:
        if out.with_suffix(".gpus").exists():
            raise Interrupted

    logged = []
    with pytest.raises(Interrupted):
        run_child([sys.executable, "-c", CHILD, str(out)], {}, processes=1, gpus=2,
                  on_tick=interrupt_once_started, log=logged.append)
    assert out.read_text() == "checkpointed"
    assert out.with_suffix(".gpus").read_text() == "0" and logged == ["training on GPU 0"]


def test_a_child_that_ignores_the_stop_is_killed_after_the_grace_period():
    def interrupt() -> None:
        raise Interrupted

    started = time.monotonic()
    with pytest.raises(Interrupted):
        run_child([sys.executable, "-c", STUBBORN], {}, processes=1, gpus=0,
                  on_tick=interrupt, log=print, grace=0.5)
    assert time.monotonic() - started < 30  # not the child's 60 s


def test_the_stop_event_is_set_by_sigint_and_sigterm():
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for sig in before:
            stop = stop_on_signals()
            os.kill(os.getpid(), sig)
            assert stop.wait(5)
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
