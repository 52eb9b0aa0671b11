"""A training job's progress and analytics: the one reader behind the REST API, its SSE
stream and `clone-pipeline progress`.

A job is the Dagster run that trains (its id is what ``start_training`` returns) or the
``training_runs`` row's own id. Figures come from ``training_metrics`` as the trainer wrote
them: GPU columns are null where NVML could not read them, never filled in.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from clone_pipeline.db.statuses import TrainingRunStatus
from clone_pipeline.launch.runs import Run, RunStatus, UnknownRunError, run_of
from clone_pipeline.launch.workflows import cancel
from clone_pipeline.services import training as runs
from clone_pipeline.settings import Settings

FINISHED_TRAINING = {TrainingRunStatus.COMPLETED, TrainingRunStatus.EARLY_STOPPED,
                     TrainingRunStatus.CANCELLED, TrainingRunStatus.FAILED}


@dataclass(frozen=True)
class Progress:
    """One reading of a training job: its training_runs row (None until its training step
    starts), its Dagster run (None for a row without one), the newest metrics row, and the
    whole metrics history when it was asked for."""

    job_id: str
    row: dict[str, Any] | None
    run: Run | None
    latest: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str | None:
        """The row's status once there is one, else the Dagster run's; a run that failed or
        was cancelled says so at once (the sensor closes the row within a cycle)."""
        dagster = self.run.status if self.run else None
        if self.row is None:
            return dagster
        if self.row["status"] not in FINISHED_TRAINING and dagster in (RunStatus.FAILED,
                                                                         RunStatus.CANCELLED):
            return dagster
        return self.row["status"]

    @property
    def finished(self) -> bool:
        return (self.status in FINISHED_TRAINING | {RunStatus.SUCCEEDED}
                or (self.run is not None and self.run.finished))

    @property
    def user(self) -> str | None:
        return self.row["user"] if self.row else self.run.user

    @property
    def error(self) -> str | None:
        return (self.row or {}).get("error") or (self.run.error if self.run else None)

    def as_dict(self, detailed: bool = False) -> dict[str, Any]:
        """The REST API's answer (camelCase; the analytics with *detailed*)."""
        latest, row = self.latest, self.row
        answer: dict[str, Any] = {
            "success": True, "jobId": self.job_id,
            "trainingRunId": str(row["id"]) if row else None,
            "dagsterRunId": row["dagster_run_id"] if row else self.job_id,
            "userId": self.user, "status": self.status,
            "dagsterRunStatus": self.run.status if self.run else None, "error": self.error,
            "progress": {"percentage": _percentage(self.status, latest),
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
            answer["analytics"] = analytics(row, self.history)
        return answer


def read_progress(settings: Settings, instance: dg.DagsterInstance, job_id: str,
                  detailed: bool = False) -> Progress:
    """A job (the Dagster run that trains, or the training_runs row's own id) as it stands:
    with *detailed*, its whole metrics history too. UnknownRunError if there is neither."""
    row = runs.find_run(settings, job_id)
    dagster_run_id = row["dagster_run_id"] if row else job_id
    try:
        run = run_of(instance, dagster_run_id) if dagster_run_id else None
    except UnknownRunError:
        if row is None:
            raise
        run = None
    # The whole history only when asked: the live view (polled every second by each SSE
    # client) reads the newest row alone.
    history = runs.metrics_after(settings, row["id"], -1) if row and detailed else []
    latest = (history[-1] if history else
              (runs.latest_metrics(settings, row["id"]) if row else None) or {})
    return Progress(job_id, row, run, latest, history)


def training_progress(settings: Settings, instance: dg.DagsterInstance, job_id: str,
                      detailed: bool = False) -> dict[str, Any]:
    """Percentage, the newest step's loss, learning rate, tokens/s and GPU figures; with
    *detailed* the analytics too (loss progression, GPU history, hardware performance)."""
    return read_progress(settings, instance, job_id, detailed).as_dict(detailed)


class ProgressFollower:
    """Follows a job by polling: each `poll` reads it and hands back the reading when its
    status or step changed, or its training run appeared, since the last one; `finished`
    turns true once the job has ended. The CLI polls it through `follow_progress`, the SSE
    stream between its own awaits."""

    def __init__(self, settings: Settings, instance: dg.DagsterInstance, job_id: str,
                 detailed: bool = False):
        self._read = (settings, instance, job_id, detailed)
        self._seen: tuple | None = None
        self.last: Progress | None = None
        self.finished = False

    def poll(self) -> Progress | None:
        found = read_progress(*self._read)
        self.last, self.finished = found, found.finished
        key = (found.status, found.latest.get("step"), found.row is None)
        if key == self._seen:
            return None
        self._seen = key
        return found


def follow_progress(settings: Settings, instance: dg.DagsterInstance, job_id: str,
                    detailed: bool = False, poll_s: float = 1.0) -> Iterator[Progress]:
    """Each change of a job's status, step or training run, and its last reading, until it
    has ended."""
    follower = ProgressFollower(settings, instance, job_id, detailed)
    while True:
        if follower.poll() is not None or follower.finished:
            yield follower.last
        if follower.finished:
            return
        time.sleep(poll_s)


def job_owner(settings: Settings, instance: dg.DagsterInstance, job_id: str) -> str:
    """The user a job trains for (UnknownRunError if there is no such job)."""
    row = runs.find_run(settings, job_id)
    if row is not None:
        return row["user"]
    user = run_of(instance, job_id).user
    if user is None:
        raise UnknownRunError(job_id)
    return user


def stop_job(settings: Settings, instance: dg.DagsterInstance, job_id: str) -> str:
    """Cancel a training job (its Dagster run); returns "cancelling", or how it already
    ended."""
    row = runs.find_run(settings, job_id)
    run = run_of(instance, (row or {}).get("dagster_run_id") or job_id)
    if run.finished:
        return run.status
    cancel(settings, run.run_id)
    return "cancelling"


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
    if status in (TrainingRunStatus.COMPLETED, TrainingRunStatus.EARLY_STOPPED,
                  RunStatus.SUCCEEDED):
        return 100.0
    return round(latest.get("percent_complete") or 0.0, 2)
