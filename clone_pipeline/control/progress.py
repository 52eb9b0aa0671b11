"""A training job's progress and analytics, as the REST API and dashboards read them.

A job is the Dagster run that trains (its id is what ``start_training`` returns) or the
``training_runs`` row's own id. Figures come from ``training_metrics`` as the trainer wrote
them: GPU columns are null where NVML could not read them, never filled in.
"""

from __future__ import annotations

import statistics
from typing import Any

import dagster as dg

from clone_pipeline.control.jobs import FINISHED, UnknownRunError, run_outcome
from clone_pipeline.control.workflows import cancel
from clone_pipeline.services import training as runs
from clone_pipeline.settings import Settings

FINISHED_TRAINING = {"completed", "early_stopped", "cancelled", "failed"}


def job_owner(settings: Settings, instance: dg.DagsterInstance, job_id: str) -> str:
    """The user a job trains for (UnknownRunError if there is no such job)."""
    row = runs.find_run(settings, job_id)
    if row is not None:
        return row["user"]
    outcome = run_outcome(instance, job_id)
    if outcome.user is None:
        raise UnknownRunError(job_id)
    return outcome.user


def stop_job(settings: Settings, instance: dg.DagsterInstance, job_id: str) -> str:
    """Cancel a training job (its Dagster run); returns "cancelling", or how it already
    ended."""
    row = runs.find_run(settings, job_id)
    run = instance.get_run_by_id((row or {}).get("dagster_run_id") or job_id)
    if run is None:
        raise UnknownRunError(job_id)
    if run.status in FINISHED:
        return run_outcome(instance, run.run_id).status
    cancel(settings, run.run_id)
    return "cancelling"


def training_progress(settings: Settings, instance: dg.DagsterInstance, job_id: str,
                      detailed: bool = False) -> dict[str, Any]:
    """Percentage, the newest step's loss, learning rate, tokens/s and GPU figures; with
    *detailed* the analytics too (loss progression, GPU history, hardware performance)."""
    row = runs.find_run(settings, job_id)
    dagster_run_id = row["dagster_run_id"] if row else job_id
    dagster_status = None
    try:
        outcome = run_outcome(instance, dagster_run_id) if dagster_run_id else None
    except UnknownRunError:
        if row is None:
            raise
        outcome = None
    if outcome is not None:
        dagster_status = outcome.status
    # The whole history only for the analytics: the live view (polled every second by each
    # SSE client) reads the newest row alone.
    history = runs.metrics_after(settings, row["id"], -1) if row and detailed else []
    latest = (history[-1] if history else
              (runs.latest_metrics(settings, row["id"]) if row else None) or {})
    status = row["status"] if row else ("queued" if dagster_status == "queued" else
                                        dagster_status)
    if row and row["status"] not in FINISHED_TRAINING and dagster_status in (
            "failed", "cancelled"):
        status = dagster_status  # the sensor closes the row within a cycle; say it now
    answer: dict[str, Any] = {
        "success": True, "jobId": job_id,
        "trainingRunId": str(row["id"]) if row else None,
        "dagsterRunId": dagster_run_id, "userId": row["user"] if row else outcome.user,
        "status": status, "dagsterRunStatus": dagster_status,
        "error": (row or {}).get("error") or (outcome.error if outcome else None),
        "progress": {"percentage": _percentage(status, latest),
                     "currentStep": latest.get("step"), "epoch": latest.get("epoch"),
                     "etaSeconds": latest.get("eta_seconds")},
        "metrics": {"current": {
            "loss": latest.get("loss"), "eval_loss": latest.get("eval_loss"),
            "learning_rate": latest.get("learning_rate"),
            "tokens_per_second": latest.get("tokens_per_second"),
            "grad_norm": latest.get("grad_norm"),
            "gpu_utilization": latest.get("gpu_utilization"),
            "vram_used_mb": latest.get("vram_used_mb"),
            "gpu_temperature_c": latest.get("gpu_temperature_c")}},
    }
    if detailed:
        answer["analytics"] = analytics(row, history)
    return answer


def analytics(row: dict[str, Any] | None, history: list[dict[str, Any]]) -> dict[str, Any]:
    """Loss progression, GPU history and the run's measured throughput on its hardware."""
    speeds = [m["tokens_per_second"] for m in history if m.get("tokens_per_second")]
    config = (row or {}).get("config") or {}
    hardware = (row or {}).get("hardware") or {}
    profile = (hardware.get("profile") or {}).get("name") or config.get("hardware_profile")
    performance = {
        "hardwareProfile": profile,
        "device": (hardware.get("profile") or {}).get("device"),
        "precision": (hardware.get("profile") or {}).get("precision"),
        "steps": len(history),
        "meanTokensPerSecond": round(statistics.fmean(speeds), 2) if speeds else None,
        "peakTokensPerSecond": round(max(speeds), 2) if speeds else None,
        "gpus": hardware.get("gpus") or [],
    }
    return {
        "lossProgression": [{"step": m["step"], "loss": m["loss"], "evalLoss": m["eval_loss"],
                             "learningRate": m["learning_rate"]} for m in history],
        "gpuUtilization": [{"step": m["step"], "utilization": m["gpu_utilization"],
                            "vramUsedMb": m["vram_used_mb"],
                            "temperatureC": m["gpu_temperature_c"]} for m in history],
        "hardwarePerformance": performance,
        # The seed's name for the same figures; null off an RTX 5090.
        "rtx5090Performance": performance if profile == "rtx5090" else None,
    }


def _percentage(status: str | None, latest: dict[str, Any]) -> float:
    if status in ("completed", "early_stopped", "succeeded"):
        return 100.0
    return round(latest.get("percent_complete") or 0.0, 2)
