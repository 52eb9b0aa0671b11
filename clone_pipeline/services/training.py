"""Training runs: what a run needs (pre-flight), and the rows that record it.

The training process itself reports through Pipes and owns no database connection; the
launching asset records its figures here.
"""

from __future__ import annotations

import hashlib
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clone_pipeline.db import datasets, training, users
from clone_pipeline.db.session import session_scope
from clone_pipeline.db.statuses import TrainingRunStatus
from clone_pipeline.files import user_folder
from clone_pipeline.settings import Settings
from clone_pipeline.training.base_models import DEFAULT_BASE_MODEL
from clone_pipeline.training.config import TrainConfig
from clone_pipeline.training.preflight import (
    MemoryCheck,
    PreflightError,
    base_model_config,
    check_memory,
    config_hash,
)
from clone_pipeline.training.summary import TrainingSummary


@dataclass(frozen=True)
class TrainingInputs:
    user_id: uuid.UUID
    dataset_id: uuid.UUID
    dataset_version: int
    train_path: Path
    eval_path: Path
    output_dir: Path  # stable per (user, dataset, config): a re-run resumes here
    memory: MemoryCheck | None = None


@dataclass(frozen=True)
class ModelVersionRecord:
    id: uuid.UUID
    version: int
    adapter_sha256: str


def preflight(settings: Settings, external_id: str, config: TrainConfig,
              min_free_disk_gb: float = 5.0,
              available_memory_mb: float | None = None) -> TrainingInputs:
    """Check everything a run needs before any heavy work; raise PreflightError if not.

    Memory: the run's estimated peak (training/memory_estimate.py) must fit what is free on the
    profile's device, read now unless *available_memory_mb* (MiB) is given.
    """
    with session_scope(settings.database_url) as session:
        user_id = users.user_id_of(session, external_id)
        dataset = datasets.latest_dataset(session, user_id)
        formatted = (datasets.latest_formatted(session, dataset.id, config.train_format)
                     if dataset is not None and dataset.ready else None)
    if dataset is None or not dataset.ready:
        why = "; ".join(dataset.readiness.get("reasons", [])) if dataset else \
            "no collected dataset"
        raise PreflightError(f"{external_id}: not ready for training ({why})")
    if formatted is None:
        raise PreflightError(f"{external_id}: no {config.train_format!r} files for dataset "
                             f"v{dataset.version}; materialise formatted_datasets first")
    train_path = settings.home / formatted.train_path
    eval_path = settings.home / formatted.eval_path
    if not train_path.is_file():
        raise PreflightError(f"{train_path}: training file missing")
    memory = check_memory(config, base_model_config(config.base_model, settings.models_dir),
                          available_memory_mb)
    output_dir = (user_folder(settings, "adapters", external_id)
                  / f"v{dataset.version:04d}-{config_hash(config)}")
    output_dir.mkdir(parents=True, exist_ok=True)
    free_gb = shutil.disk_usage(output_dir).free / 2**30
    if free_gb < min_free_disk_gb:
        raise PreflightError(f"{free_gb:.1f} GB free under {output_dir.parent}; checkpoints "
                             f"need at least {min_free_disk_gb:g} GB")
    return TrainingInputs(user_id, dataset.id, dataset.version, train_path, eval_path,
                          output_dir, memory)


def start_run(settings: Settings, inputs: TrainingInputs, config: TrainConfig,
              dagster_run_id: str | None) -> uuid.UUID:
    with session_scope(settings.database_url) as session:
        return training.add_run(
            session, user_id=inputs.user_id, dagster_run_id=dagster_run_id,
            dataset_id=inputs.dataset_id, status=TrainingRunStatus.RUNNING,
            base_model=config.base_model, config=config.as_dict(),
            checkpoint_path=str(inputs.output_dir / "checkpoint")).id


def finish_run(settings: Settings, run_id: uuid.UUID, status: TrainingRunStatus,
               summary: TrainingSummary | None = None, error: str | None = None) -> None:
    with session_scope(settings.database_url) as session:
        training.finish_run(session, run_id, TrainingRunStatus(status),
                            summary.hardware if summary else None, error)


def close_unfinished_runs(settings: Settings, dagster_run_id: str,
                          status: TrainingRunStatus, error: str) -> int:
    """Mark the training runs that *dagster_run_id* left pending or running as *status*
    (failed or cancelled) with *error*; final rows are left alone. Returns how many.

    The trained_adapter asset records its own outcome; this is for runs that ended without
    it getting the chance (a killed run worker, a run cancelled before its step ran).
    """
    if status not in (TrainingRunStatus.FAILED, TrainingRunStatus.CANCELLED):
        raise ValueError(f"status must be 'failed' or 'cancelled', not {status!r}")
    with session_scope(settings.database_url) as session:
        return training.close_unfinished_runs(session, dagster_run_id, status, error)


def record_metrics(settings: Settings, run_id: uuid.UUID, dagster_run_id: str | None,
                   metrics: list[dict[str, Any]]) -> None:
    """training_metrics rows for the steps a training process reported."""
    if metrics:
        with session_scope(settings.database_url) as session:
            training.add_metrics(session, run_id, dagster_run_id, metrics)


def record_model_version(settings: Settings, run_id: uuid.UUID, summary: TrainingSummary,
                         dagster_run_id: str | None) -> ModelVersionRecord:
    adapter = Path(summary.adapter_dir)
    sha = hashlib.sha256((adapter / "adapter_model.safetensors").read_bytes()).hexdigest()
    metrics = {"best_eval_loss": summary.best_eval_loss,
               "final_train_loss": summary.final_train_loss, "step": summary.step,
               "tokens_trained": summary.tokens_trained,
               "train_seconds": summary.train_seconds}
    with session_scope(settings.database_url) as session:
        row = training.add_model_version(session, run_id, dagster_run_id, str(adapter), sha,
                                         metrics)
        return ModelVersionRecord(row.id, row.version, sha)


def find_run(settings: Settings, run_id: str) -> dict[str, Any] | None:
    """A training run by its own id or by the Dagster run id that launched it."""
    with session_scope(settings.database_url) as session:
        found = training.find_run(session, run_id)
        if found is None:
            return None
        row, external_id = found
        return {"id": row.id, "user": external_id, "status": row.status,
                "base_model": row.base_model, "dagster_run_id": row.dagster_run_id,
                "started_at": row.started_at, "finished_at": row.finished_at,
                "error": row.error, "config": dict(row.config or {}),
                "hardware": dict(row.hardware or {})}


def metrics_after(settings: Settings, run_id: uuid.UUID, step: int) -> list[dict[str, Any]]:
    """training_metrics rows of *run_id* with a step above *step*, in order."""
    with session_scope(settings.database_url) as session:
        return training.metrics_after(session, run_id, step)


def latest_metrics(settings: Settings, run_id: uuid.UUID) -> dict[str, Any] | None:
    with session_scope(settings.database_url) as session:
        return training.latest_metrics(session, run_id)


def recommend_settings(settings: Settings, external_id: str,
                       base_model: str = DEFAULT_BASE_MODEL) -> dict[str, Any]:
    """The settings this machine's hardware profile recommends for *external_id*'s data: the
    profile's preset (the CPU demo's on a CPU), the micro-batch the memory estimate allows,
    and that estimate against the memory free now (with advice when it does not fit)."""
    from clone_pipeline.training.config import PRESETS
    from clone_pipeline.training.hardware import select_profile

    with session_scope(settings.database_url) as session:
        dataset = datasets.latest_dataset(session, users.user_id_of(session, external_id))
        data = ({"datasetVersion": dataset.version, "ready": dataset.ready,
                 "examples": dataset.total_examples}
                if dataset is not None else None)
    report = select_profile("auto")
    preset = dict(PRESETS.get(report.profile.name)
                  or PRESETS["cpu_demo" if report.profile.device == "cpu" else "rtx5090"])
    preset.pop("min_free_disk_gb", None)
    config = TrainConfig(**{**preset, "base_model": base_model,
                            "hardware_profile": report.profile.name})
    memory: dict[str, Any]
    try:
        check = check_memory(config, base_model_config(base_model, settings.models_dir))
        config = TrainConfig(**{**config.as_dict(), "lora_targets": config.lora_targets,
                                "micro_batch_size": check.estimate.micro_batch})
        memory = {"fits": True, "estimatedGiB": round(check.estimate.total_bytes / 2**30, 3),
                  "availableGiB": (round(check.available_mb / 1024, 3)
                                   if check.available_mb is not None else None),
                  "source": check.source, "breakdown": check.estimate.describe(),
                  "advice": None}
    except PreflightError as exc:
        memory = {"fits": False, "estimatedGiB": None, "availableGiB": None, "source": None,
                  "breakdown": None, "advice": str(exc)}
    return {"hardware": report.as_dict(), "recommended": config.as_dict(), "memory": memory,
            "data": data}
