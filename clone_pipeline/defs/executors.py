"""Where steps run: the executor the deployment chooses, and the tags GPU steps carry.

``CLONE_EXECUTOR`` picks the executor of every job: unset (or ``multiprocess``) is Dagster's
default, one process per step on this machine, each forked from a server that imported the
code location once (``LOCAL``); ``k8s`` runs each step as its own Kubernetes
pod (``dagster-k8s``, the ``k8s`` extra), where the GPU steps' tags below request a GPU and a
GPU node; ``celery`` sends each step to Celery workers (``dagster-celery``, the ``celery``
extra) over ``CLONE_CELERY_BROKER`` (Redis by default; RabbitMQ's ``pyamqp://`` works too):
the GPU steps to the ``gpu`` queue, the rest to ``dagster``. The tags are inert under the
default executor.
"""

import os

import dagster as dg

EXECUTORS = ("multiprocess", "k8s", "celery")
CELERY_BROKER = "redis://127.0.0.1:6379/1"
# One task at a time per worker process, acknowledged when done: a worker that dies mid-step
# leaves its task to be redelivered instead of losing it.
CELERY_CONFIG = {"worker_prefetch_multiplier": 1, "task_acks_late": True}

# Dagster's default executor with its step processes forked from a forkserver that preloads
# the job's module (the code location): a step then starts without importing it again, where
# spawn (Dagster's default start method) pays about 2 s of imports per step.
LOCAL = dg.multi_or_in_process_executor.configured(
    {"multiprocess": {"start_method": {"forkserver": {}}}}, name="multi_or_in_process_executor")

GPU_TAGS = {
    # Kubernetes: one GPU per step pod, scheduled only onto GPU nodes (the NVIDIA device
    # plugin's resource and node label; GPU nodes are usually tainted for GPU work only).
    "dagster-k8s/config": {
        "container_config": {"resources": {"requests": {"nvidia.com/gpu": "1"},
                                           "limits": {"nvidia.com/gpu": "1"}}},
        "pod_spec_config": {
            "node_selector": {"nvidia.com/gpu.present": "true"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists",
                             "effect": "NoSchedule"}]},
    },
    # Celery: the training and evaluation steps go to the workers of the `gpu` queue.
    "dagster-celery/queue": "gpu",
}


def executor_from_env() -> dg.ExecutorDefinition:
    """The executor CLONE_EXECUTOR names (unset: LOCAL)."""
    name = os.environ.get("CLONE_EXECUTOR", "").strip() or "multiprocess"
    if name not in EXECUTORS:
        raise ValueError(f"CLONE_EXECUTOR={name!r} is not one of {', '.join(EXECUTORS)}")
    if name == "multiprocess":
        return LOCAL
    try:
        if name == "k8s":
            from dagster_k8s import k8s_job_executor

            return k8s_job_executor
        from dagster_celery import celery_executor
    except ImportError as exc:
        raise RuntimeError(f"CLONE_EXECUTOR={name} needs its extra: pip install "
                           f"'clone_pipeline[{name}]'") from exc
    broker = os.environ.get("CLONE_CELERY_BROKER") or CELERY_BROKER
    return celery_executor.configured(
        {"broker": broker, "backend": os.environ.get("CLONE_CELERY_BACKEND") or broker,
         "config_source": CELERY_CONFIG}, name="celery")
