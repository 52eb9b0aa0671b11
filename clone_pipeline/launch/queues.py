"""Admin queues applied to the Dagster instance.

Creating a queue needs nothing from Dagster (its runs carry their limit in their tags, see
``services.queues``). Changing one retags the runs already in it, queued and in progress,
which the daemon reads on its next cycle: a new limit, a pause or a resume takes effect
without editing dagster.yaml or restarting anything.
"""

from __future__ import annotations

import dagster as dg

from clone_pipeline.launch.names import GPU_POOL
from clone_pipeline.launch.runs import Run, run_of
from clone_pipeline.services import queues
from clone_pipeline.services.queues import Queue, QueueError
from clone_pipeline.settings import Settings
from clone_pipeline.training.hardware import gpu_status

WAITING = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED]
IN_PROGRESS = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
               dg.DagsterRunStatus.CANCELING]


def runs_in(instance: dg.DagsterInstance, name: str,
            statuses: list[dg.DagsterRunStatus]) -> list[dg.DagsterRun]:
    return list(instance.get_runs(dg.RunsFilter(tags={queues.QUEUE_TAG: name},
                                                statuses=statuses)))


def queue_runs(instance: dg.DagsterInstance, name: str) -> list[Run]:
    """The queue's runs going, then those waiting, higher priority first."""
    waiting = sorted(runs_in(instance, name, WAITING),
                     key=lambda r: -int(r.tags.get(queues.RUN_PRIORITY_TAG, "0")))
    return [run_of(instance, r.run_id) for r in runs_in(instance, name, IN_PROGRESS) + waiting]


def retag_runs(instance: dg.DagsterInstance, before: Queue, after: Queue) -> int:
    """Carry *after*'s limit, pause state and weights onto the runs queued or running in it.
    The old ladder tag keeps its key but gets a value of its own (tags cannot be removed), so
    it no longer counts against anyone. Returns how many runs were retagged."""
    runs = runs_in(instance, after.name, WAITING + IN_PROGRESS)
    for run in runs:
        tags = queues.run_tags(after, run.tags.get(queues.PRIORITY_TAG, queues.DEFAULT_PRIORITY))
        if before.max_concurrent_jobs != after.max_concurrent_jobs:
            tags[queues.limit_tag(before.max_concurrent_jobs)] = f"retired:{run.run_id}"
        instance.add_run_tags(run.run_id, tags)
    return len(runs)


def update_queue(settings: Settings, instance: dg.DagsterInstance, name: str,
                 **changes) -> tuple[Queue, int]:
    """Change a queue (limit, weights, paused) and apply it to its runs at once."""
    before, after = queues.update_queue(settings, name, **changes)
    return after, retag_runs(instance, before, after)


def delete_queue(settings: Settings, instance: dg.DagsterInstance, name: str) -> None:
    """Delete an empty queue; one with runs waiting or going is refused, saying which."""
    queues.get_queue(settings, name)
    busy = runs_in(instance, name, WAITING + IN_PROGRESS)
    if busy:
        raise QueueError(f"queue {name!r} still has {len(busy)} queued or running run(s) "
                         f"({', '.join(r.run_id[:8] for r in busy[:5])}): cancel them "
                         f"(clone-pipeline workflow cancel) or wait, then delete it")
    queues.delete_queue(settings, name)


def queue_load(instance: dg.DagsterInstance, name: str) -> dict[str, int]:
    return {"queued": len(runs_in(instance, name, WAITING)),
            "running": len(runs_in(instance, name, IN_PROGRESS))}


def gpu_count() -> int:
    """The GPUs NVML finds (0 without NVML or a GPU)."""
    return len(gpu_status()[0])


def gpu_slots(settings: Settings, gpus: int | None = None) -> int:
    """Concurrent GPU runs: CLONE_GPU_SLOTS, else one per GPU (*gpus*, or what NVML finds),
    at least one (on a CPU machine the slot keeps two trainings from sharing its cores)."""
    return settings.gpu_slots or max(1, gpu_count() if gpus is None else gpus)


def processes_per_run(settings: Settings, gpus: int | None = None) -> int:
    """Data-parallel processes (GPUs) a training run uses: CLONE_TRAIN_PROCESSES, else the
    GPUs (*gpus*, or what NVML finds) shared out between the GPU slots, at least one. So by
    default eight GPUs train eight runs at once, and with CLONE_GPU_SLOTS=1 each run on all
    eight."""
    if settings.train_processes:
        return settings.train_processes
    gpus = gpu_count() if gpus is None else gpus
    return max(1, gpus // gpu_slots(settings, gpus))


def apply_gpu_slots(settings: Settings, instance: dg.DagsterInstance) -> int:
    """Set the GPU pool's limit in the instance (it lives in Dagster's database, so the
    running daemon sees it at once). Returns the limit."""
    slots = gpu_slots(settings)
    instance.event_log_storage.set_concurrency_slots(GPU_POOL, slots)
    return slots


def gpu_pool_load(instance: dg.DagsterInstance) -> dict[str, int]:
    """The GPU pool's slots, how many are taken and how many runs wait for one."""
    info = instance.event_log_storage.get_concurrency_info(GPU_POOL)
    return {"slots": info.slot_count, "inUse": info.active_slot_count,
            "pendingRuns": len(info.pending_run_ids)}
