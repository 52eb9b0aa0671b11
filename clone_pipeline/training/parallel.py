"""Data-parallel training over several processes, one per GPU, started by ``accelerate launch``.

The trainer stays one loop. Every process computes the same global batch order and trains on
its share of each step's sequences (``shard``); DDP averages the gradients, so a loss scaled
by the number of processes gives exactly the one-process gradient of the same effective
batch. Only the main process reports and writes files. In a single process (the default)
every method is the identity, so nothing changes and accelerate is not even imported.

``accelerate launch --multi_gpu`` only starts the processes (torchrun); ``Accelerator`` then
joins them: NCCL on GPUs, gloo on CPU (how the tests run two processes on this machine).
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from collections.abc import Sequence

import torch

STRATEGIES = ("ddp", "fsdp")
ENTRY_POINT = "clone_pipeline.training.pipes_main"


def training_command(processes: int, strategy: str = "ddp", module: str = ENTRY_POINT
                     ) -> list[str]:
    """The command that runs *module*: plainly for one process, else under ``accelerate
    launch`` with one process per GPU (--multi_gpu only means torchrun's process start; on a
    CPU machine the processes join over gloo)."""
    if processes <= 1:
        return [sys.executable, "-m", module]
    if strategy not in STRATEGIES:
        raise ValueError(f"training strategy {strategy!r} is not one of {', '.join(STRATEGIES)}")
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
               "--num_processes", str(processes), "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no",
               # two trainings on one machine must not meet on torchrun's default port
               "--main_process_port", str(_free_port())]
    if strategy == "fsdp":
        command += ["--use_fsdp", "--fsdp_version", "2", "--fsdp_auto_wrap_policy",
                    "TRANSFORMER_BASED_WRAP", "--fsdp_state_dict_type", "FULL_STATE_DICT"]
    return command + ["-m", module]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launched_processes() -> int:
    """How many training processes the launcher started (WORLD_SIZE, 1 when not launched)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


class Parallel:
    """The process group this trainer belongs to; a single process when *accelerator* is None."""

    def __init__(self, accelerator=None):
        self.accelerator = accelerator
        self.world = accelerator.num_processes if accelerator else 1
        self.rank = accelerator.process_index if accelerator else 0
        self.is_main = self.rank == 0

    @classmethod
    def from_environment(cls, device: str) -> Parallel:
        """Join the processes ``accelerate launch`` started, or stay a single process."""
        if launched_processes() <= 1:
            return cls()
        from accelerate import Accelerator

        # Precision stays the trainer's own (autocast + GradScaler): accelerate only wraps.
        return cls(Accelerator(cpu=device == "cpu", mixed_precision="no"))

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The module to call in training: DDP (or FSDP when launched with --use_fsdp)."""
        return self.accelerator.prepare_model(model) if self.accelerator else model

    def shard(self, items: Sequence) -> list:
        """This process's share of *items*, in order (every world-th, from its rank)."""
        return list(items[self.rank::self.world])

    def sum(self, values: Sequence[float]) -> list[float]:
        """Each value summed over the processes (one all-reduce for all of them)."""
        if not self.accelerator:
            return list(values)
        tensor = torch.tensor(list(values), dtype=torch.float64, device=self.accelerator.device)
        torch.distributed.all_reduce(tensor)
        return tensor.tolist()

    def any(self, flag: bool) -> bool:
        """True in every process when it is true in one: a stop is taken at the same step."""
        return self.sum([float(flag)])[0] > 0

    def no_sync(self, model: torch.nn.Module):
        """Accumulate gradients locally; the next synced backward averages them."""
        return self.accelerator.no_sync(model) if self.accelerator else contextlib.nullcontext()

    def gather(self, obj) -> list:
        """*obj* from every process, in rank order (picklable objects)."""
        if not self.accelerator:
            return [obj]
        from accelerate.utils import gather_object

        return gather_object([obj])

    def wait(self) -> None:
        if self.accelerator:
            self.accelerator.wait_for_everyone()
