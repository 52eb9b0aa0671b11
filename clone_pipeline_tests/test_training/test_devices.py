"""GPU leases: concurrent runs on one machine get GPUs of their own, and a lease ends with
the process that held it, however it ends. (Locks only: no GPU needed.)"""

import subprocess
import sys

import pytest

from clone_pipeline.training.devices import lease_gpus, visible_devices


def test_concurrent_runs_get_different_gpus_and_a_full_machine_says_so(tmp_path):
    with lease_gpus(1, 3, tmp_path) as first, lease_gpus(2, 3, tmp_path) as second:
        assert first == [0] and second == [1, 2]
        assert visible_devices(second) == {"CUDA_VISIBLE_DEVICES": "1,2"}
        with pytest.raises(RuntimeError, match="needs 1 GPU.*only 0 of the machine's 3"), \
                lease_gpus(1, 3, tmp_path):
            pass
    with lease_gpus(3, 3, tmp_path) as everything:  # all released at the blocks' ends
        assert everything == [0, 1, 2]


def test_no_gpus_lease_nothing_and_change_no_environment(tmp_path):
    with lease_gpus(2, 0, tmp_path) as gpus:
        assert gpus == [] and visible_devices(gpus) == {}


def test_a_killed_holder_releases_its_gpu(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "from pathlib import Path\n"
         "from clone_pipeline.training.devices import lease_gpus\n"
         f"with lease_gpus(1, 1, Path({str(tmp_path)!r})):\n"
         "    print('held', flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RuntimeError), lease_gpus(1, 1, tmp_path):
            pass
    finally:
        holder.kill()
        holder.wait()
    with lease_gpus(1, 1, tmp_path) as gpus:
        assert gpus == [0]
