"""Data-parallel training over several processes, one per GPU, started by ``accelerate launch``.

The trainer stays one loop. Every process computes the same global batch order and trains on
its share of each step's sequences (``shard``); the gradients are averaged over the processes,
so a loss scaled by their number gives exactly the one-process gradient of the same effective
batch. Only the main process reports and writes files. In a single process (the default)
every method is the identity, so nothing changes and accelerate is not even imported.

Two strategies: ``ddp`` (accelerate's DistributedDataParallel: every process holds the whole
model) and ``fsdp`` (PyTorch's FSDP2 ``fully_shard`` per decoder layer: the frozen base
weights are split between the processes, for a base that does not fit one GPU).
``accelerate launch --multi_gpu`` only starts the processes (torchrun); ``Accelerator`` then
joins them: NCCL on GPUs, gloo on CPU (how the tests run two processes on this machine).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from clone_pipeline.net import free_port

if TYPE_CHECKING:  # the training asset imports this module without training in-process
    import torch

STRATEGIES = ("ddp", "fsdp")
ENTRY_POINT = "clone_pipeline.training.pipes_main"


def training_command(processes: int, module: str = ENTRY_POINT) -> list[str]:
    """The command that runs *module*: plainly for one process, else under ``accelerate
    launch`` with one process per GPU (--multi_gpu only means torchrun's process start; on a
    CPU machine the processes join over gloo). The strategy travels with the job."""
    if processes <= 1:
        return [sys.executable, "-m", module]
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
            "--num_processes", str(processes), "--num_machines", "1",
            "--mixed_precision", "no", "--dynamo_backend", "no",
            # two trainings on one machine must not meet on torchrun's default port
            "--main_process_port", str(free_port()), "-m", module]


def launched_processes() -> int:
    """How many training processes the launcher started (WORLD_SIZE, 1 when not launched)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


class Parallel:
    """The process group this trainer belongs to; a single process when *accelerator* is None."""

    def __init__(self, accelerator=None, strategy: str = "ddp"):
        if strategy not in STRATEGIES:
            raise ValueError(f"training strategy {strategy!r} is not one of "
                             f"{', '.join(STRATEGIES)}")
        self.accelerator = accelerator
        self.world = accelerator.num_processes if accelerator else 1
        self.rank = accelerator.process_index if accelerator else 0
        self.is_main = self.rank == 0
        self.sharded = accelerator is not None and strategy == "fsdp"

    @classmethod
    def from_environment(cls, device: str, strategy: str = "ddp") -> Parallel:
        """Join the processes ``accelerate launch`` started, or stay a single process."""
        if launched_processes() <= 1:
            return cls(strategy=strategy)
        from accelerate import Accelerator

        # Precision stays the trainer's own (autocast + GradScaler): accelerate only joins.
        return cls(Accelerator(cpu=device == "cpu", mixed_precision="no"), strategy)

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The module to call in training: DDP's wrapper, or *model* itself sharded in place
        (each decoder layer, then the rest) under FSDP."""
        if not self.accelerator:
            return model
        if not self.sharded:
            return self.accelerator.prepare_model(model)
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        mesh = init_device_mesh(self.accelerator.device.type, (self.world,))
        # transformers names the blocks a model may be split at (LlamaDecoderLayer, ...)
        blocks = set(getattr(model.get_base_model(), "_no_split_modules", None) or ())
        for module in model.modules():
            if type(module).__name__ in blocks:
                fully_shard(module, mesh=mesh)
        fully_shard(model, mesh=mesh)
        return model

    def shard(self, items: Sequence) -> list:
        """This process's share of *items*, in order (every world-th, from its rank)."""
        return list(items[self.rank::self.world])

    def passes(self, items: int, micro_batch: int) -> int:
        """Forward passes every process makes over a shard of *items*: the largest share's
        (rank 0's). Each process makes as many, padding with zero-weighted ones: FSDP gathers
        weights in each pass and DDP syncs in the last, so no process may skip one."""
        return math.ceil(math.ceil(items / self.world) / micro_batch)

    def sum(self, values: Sequence[float]) -> list[float]:
        """Each value summed over the processes (one all-reduce for all of them)."""
        if not self.accelerator:
            return list(values)
        import torch

        tensor = torch.tensor(list(values), dtype=torch.float64, device=self.accelerator.device)
        torch.distributed.all_reduce(tensor)
        return tensor.tolist()

    def any(self, flag: bool) -> bool:
        """True in every process when it is true in one: a stop is taken at the same step."""
        return self.sum([float(flag)])[0] > 0

    @contextlib.contextmanager
    def no_sync(self, model: torch.nn.Module):
        """Accumulate gradients locally; the next synced backward averages them."""
        if not self.accelerator:
            yield
        elif self.sharded:
            model.set_requires_gradient_sync(False)
            try:
                yield
            finally:
                model.set_requires_gradient_sync(True)
        else:
            with self.accelerator.no_sync(model):
                yield

    def gather(self, obj) -> list:
        """*obj* from every process, in rank order (picklable objects)."""
        if not self.accelerator:
            return [obj]
        from accelerate.utils import gather_object

        return gather_object([obj])

    def wait(self) -> None:
        if self.accelerator:
            self.accelerator.wait_for_everyone()

    # ------------------------------------------------------------------ sharded state

    def full_model_state(self, model: torch.nn.Module) -> dict | None:
        """Under FSDP the whole model's weights, gathered onto the main process (every
        process must call it); None elsewhere: the model holds them whole already."""
        if not self.sharded:
            return None
        from torch.distributed.checkpoint.state_dict import get_model_state_dict

        return get_model_state_dict(model, options=_full_state())

    def optimizer_state(self, model: torch.nn.Module, optimizer) -> dict:
        """The optimizer's state to checkpoint: whole tensors keyed by parameter name under
        FSDP (every process must call it), the plain state dict elsewhere."""
        if not self.sharded:
            return optimizer.state_dict()
        from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

        return get_optimizer_state_dict(model, optimizer, options=_full_state())

    def load_optimizer_state(self, model: torch.nn.Module, optimizer, state: dict,
                             keyed_by_name: bool) -> None:
        if keyed_by_name:  # written under FSDP: loads sharded or whole
            from torch.distributed.checkpoint.state_dict import (
                StateDictOptions,
                set_optimizer_state_dict,
            )

            set_optimizer_state_dict(model, optimizer, optim_state_dict=state,
                                     options=StateDictOptions(full_state_dict=True))
        elif self.sharded:
            raise RuntimeError("this checkpoint was written without FSDP: resume it with "
                               "CLONE_TRAIN_STRATEGY=ddp (or on one process)")
        else:
            optimizer.load_state_dict(state)


def _full_state():
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=True, cpu_offload=True)
