"""Where steps run: the executor the deployment chooses, and the tags GPU steps carry.

``CLONE_EXECUTOR`` picks the executor of every job: unset (or ``multiprocess``) is Dagster's
default, one process per step on this machine; ``k8s`` runs each step as its own Kubernetes
pod (``dagster-k8s``, the ``k8s`` extra), where the GPU steps' tags below request a GPU and a
GPU node. The tags are inert under the default executor.
"""

import os

import dagster as dg

EXECUTORS = ("multiprocess", "k8s")

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


def executor_from_env() -> dg.ExecutorDefinition | None:
    """The executor CLONE_EXECUTOR names (None: Dagster's default)."""
    name = os.environ.get("CLONE_EXECUTOR", "").strip() or "multiprocess"
    if name == "multiprocess":
        return None
    if name == "k8s":
        try:
            from dagster_k8s import k8s_job_executor
        except ImportError as exc:
            raise RuntimeError("CLONE_EXECUTOR=k8s needs dagster-k8s: pip install "
                               "'clone_pipeline[k8s]'") from exc
        return k8s_job_executor
    raise ValueError(f"CLONE_EXECUTOR={name!r} is not one of {', '.join(EXECUTORS)}")
