"""Which GPUs a training run uses when several runs share one machine.

The queue lets CLONE_GPU_SLOTS runs train at once; each must get GPUs of its own, not all
start on GPU 0. A run leases its GPUs with an exclusive lock per GPU, in a folder local to
the machine (GPUs are per machine, and flock over a shared data root would not be), and its
training process sees only those (CUDA_VISIBLE_DEVICES). The kernel drops a lock when its
holder exits or is killed, so a lease can never outlive its run.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def lock_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"clone-pipeline-gpus-{os.getuid()}"


@contextmanager
def lease_gpus(wanted: int, available: int, folder: Path | None = None
               ) -> Iterator[list[int]]:
    """Hold *wanted* of the machine's *available* GPUs (indices 0..available-1) for the
    block; the lowest free ones. No GPUs (a CPU machine) leases nothing."""
    if available == 0:
        yield []
        return
    folder = folder or lock_dir()
    folder.mkdir(parents=True, exist_ok=True)
    held: list[tuple[int, object]] = []
    try:
        for index in range(available):
            handle = (folder / f"gpu{index}.lock").open("w")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            held.append((index, handle))
            if len(held) == wanted:
                break
        if len(held) < wanted:
            raise RuntimeError(
                f"this run needs {wanted} GPU(s) and only {len(held)} of the machine's "
                f"{available} are free: other trainings hold the rest. Runs launched through "
                f"the queue wait for a GPU slot; check CLONE_GPU_SLOTS x "
                f"CLONE_TRAIN_PROCESSES is at most {available}")
        yield [index for index, _ in held]
    finally:
        for _, handle in held:
            handle.close()


def visible_devices(gpus: list[int]) -> dict[str, str]:
    """The environment that shows a training process only its leased GPUs."""
    return {"CUDA_VISIBLE_DEVICES": ",".join(str(i) for i in gpus)} if gpus else {}
