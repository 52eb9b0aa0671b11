"""Training runs in the domain database: pre-flight, bookkeeping, versions and plots."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update

from clone_pipeline.data.formats import record_messages
from clone_pipeline.db import repository
from clone_pipeline.db.models import (
    FormattedTrainingData,
    ModelVersion,
    TrainingMetric,
    TrainingRun,
    User,
    utcnow,
)
from clone_pipeline.db.session import session_scope
from clone_pipeline.settings import Settings
from clone_pipeline.training import local_tiny
from clone_pipeline.training.base_models import load_tokenizer
from clone_pipeline.training.config import TrainConfig
from clone_pipeline.training.hardware import HardwareReport, free_memory_mb, select_profile

if TYPE_CHECKING:
    from clone_pipeline.training.trainer import MemoryEstimate


class PreflightError(RuntimeError):
    """Training cannot start; the message says what is missing and what to do."""


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
class MemoryCheck:
    """The pre-flight's memory figures: what the run needs against what is free."""

    estimate: MemoryEstimate
    available_mb: float | None  # None: could not be read, so not compared
    source: str  # what was read, e.g. "available RAM"

    def describe(self) -> str:
        free = (f"{self.available_mb / 1024:.2f} GiB" if self.available_mb is not None
                else "unknown")
        return f"needs {self.estimate.describe()}; {self.source}: {free}"


def config_hash(config: TrainConfig) -> str:
    return hashlib.sha256(json.dumps(config.as_dict(), sort_keys=True, default=str)
                          .encode()).hexdigest()[:12]


def preflight(settings: Settings, external_id: str, config: TrainConfig,
              min_free_disk_gb: float = 5.0,
              available_memory_mb: float | None = None) -> TrainingInputs:
    """Check everything a run needs before any heavy work; raise PreflightError if not.

    Memory: the run's estimated peak (trainer.estimate_memory) must fit what is free on the
    profile's device, read now unless *available_memory_mb* (MiB) is given.
    """
    with session_scope(settings.database_url) as session:
        user = repository.get_user(session, external_id)
        dataset = repository.latest_dataset(session, user.id)
        if dataset is None or not dataset.ready:
            why = "; ".join(dataset.readiness.get("reasons", [])) if dataset else \
                "no collected dataset"
            raise PreflightError(f"{external_id}: not ready for training ({why})")
        formatted = session.scalar(
            select(FormattedTrainingData).where(
                FormattedTrainingData.dataset_id == dataset.id,
                FormattedTrainingData.format == config.train_format)
            .order_by(FormattedTrainingData.created_at.desc()).limit(1))
        if formatted is None:
            raise PreflightError(f"{external_id}: no {config.train_format!r} files for dataset "
                                 f"v{dataset.version}; materialise formatted_datasets first")
        train_path = settings.home / formatted.train_path
        eval_path = settings.home / formatted.eval_path
        if not train_path.is_file():
            raise PreflightError(f"{train_path}: training file missing")
        user_id, dataset_id, dataset_version = user.id, dataset.id, dataset.version
    memory = check_memory(config, base_model_config(config.base_model, settings.models_dir),
                          available_memory_mb)
    output_dir = (settings.adapters_dir / external_id /
                  f"v{dataset_version:04d}-{config_hash(config)}")
    output_dir.mkdir(parents=True, exist_ok=True)
    free_gb = shutil.disk_usage(output_dir).free / 2**30
    if free_gb < min_free_disk_gb:
        raise PreflightError(f"{free_gb:.1f} GB free under {settings.adapters_dir}; checkpoints "
                             f"need at least {min_free_disk_gb:g} GB")
    return TrainingInputs(user_id, dataset_id, dataset_version, train_path, eval_path,
                          output_dir, memory)


def base_model_config(name: str, models_dir: Path):
    """The base model's transformers config, from local files only (local-tiny's from its
    recipe, so the model need not be built yet). Raises PreflightError if it has none."""
    if name == local_tiny.NAME:
        return local_tiny.model_config(load_tokenizer(name, models_dir))
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(name, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise PreflightError(f"base model {name!r} has no local files: give a local folder or "
                             f"download it first (nothing is downloaded during a run)") from exc


def check_memory(config: TrainConfig, model_config,
                 available_memory_mb: float | None = None) -> MemoryCheck:
    """The run's estimated peak memory against what is free on its hardware profile's device
    (read now unless *available_memory_mb* is given); PreflightError if it does not fit."""
    from clone_pipeline.training.trainer import estimate_memory  # torch: only when training

    try:
        hardware = select_profile(config.hardware_profile)
    except (ValueError, RuntimeError) as exc:
        raise PreflightError(str(exc)) from exc
    estimate = estimate_memory(config, model_config, hardware)
    if available_memory_mb is None:
        available_memory_mb, source = free_memory_mb(hardware)
    else:
        source = f"memory available to the {hardware.profile.name} profile"
    check = MemoryCheck(estimate, available_memory_mb, source)
    if available_memory_mb is None or estimate.total_bytes <= available_memory_mb * 2**20:
        return check
    advice = _memory_advice(config, model_config, hardware, estimate,
                            available_memory_mb * 2**20)
    raise PreflightError(f"not enough memory to train on the {hardware.profile.name!r} "
                         f"profile: the run {check.describe()}. To fit, {advice}.")


def _memory_advice(config: TrainConfig, model_config, hardware: HardwareReport,
                   estimate: MemoryEstimate, available: float) -> str:
    """What would make the run fit in *available* bytes, most effective first."""
    from clone_pipeline.training.trainer import activation_bytes_per_sequence, use_checkpointing

    on_gpu = hardware.profile.device == "cuda"
    room = available - (estimate.total_bytes - estimate.activation_bytes)
    advice = []
    if room > 0:  # everything but the activations fits: fewer or shorter sequences may
        per_sequence = estimate.activation_bytes / estimate.micro_batch
        if estimate.micro_batch > 1 and room >= per_sequence:
            advice.append(f"set micro_batch_size to {2 ** int(math.log2(room // per_sequence))}")
        longest = 0  # the longest context at which this micro-batch fits, by bisection
        low, high = 32, config.context_length - 1
        while low <= high:
            middle = (low + high) // 2
            if estimate.micro_batch * activation_bytes_per_sequence(
                    replace(config, context_length=middle), model_config, hardware) <= room:
                longest, low = middle, middle + 1
            else:
                high = middle - 1
        if longest:
            advice.append(f"shorten context_length to {longest} tokens or less "
                          f"(now {config.context_length})")
        if not use_checkpointing(config, hardware):
            advice.append("turn gradient_checkpointing on")
    if on_gpu and config.quantization != "4bit":
        advice.append("quantise the base model (quantization: 4bit, QLoRA)")
    advice.append("use a smaller base model or a profile with more memory"
                  + ("" if on_gpu else " (a GPU profile)"))
    return "; or ".join(advice)


def start_run(settings: Settings, inputs: TrainingInputs, config: TrainConfig,
              dagster_run_id: str | None) -> uuid.UUID:
    with session_scope(settings.database_url) as session:
        row = TrainingRun(user_id=inputs.user_id, dagster_run_id=dagster_run_id,
                          dataset_id=inputs.dataset_id, status="running",
                          base_model=config.base_model, config=config.as_dict(),
                          checkpoint_path=str(inputs.output_dir / "checkpoint"),
                          started_at=utcnow())
        session.add(row)
        session.flush()
        return row.id


def finish_run(settings: Settings, run_id: uuid.UUID, status: str,
               summary: dict[str, Any] | None = None, error: str | None = None) -> None:
    with session_scope(settings.database_url) as session:
        row = session.get(TrainingRun, run_id)
        row.status, row.finished_at, row.error = status, utcnow(), error
        if summary:
            row.hardware = summary.get("hardware") or {}


# training_runs statuses: "pending" and "running" are unfinished; "completed",
# "early_stopped", "cancelled" and "failed" are final.
UNFINISHED_STATUSES = ("pending", "running")


def close_unfinished_runs(settings: Settings, dagster_run_id: str, status: str,
                          error: str) -> int:
    """Mark the training runs that *dagster_run_id* left pending or running as *status*
    ("failed" or "cancelled") with *error*; final rows are left alone. Returns how many.

    The trained_adapter asset records its own outcome; this is for runs that ended without
    it getting the chance (a killed run worker, a run cancelled before its step ran).
    """
    if status not in ("failed", "cancelled"):
        raise ValueError(f"status must be 'failed' or 'cancelled', not {status!r}")
    with session_scope(settings.database_url) as session:
        result = session.execute(
            update(TrainingRun)
            .where(TrainingRun.dagster_run_id == dagster_run_id,
                   TrainingRun.status.in_(UNFINISHED_STATUSES))
            .values(status=status, error=error[:2000], finished_at=utcnow()))
        return result.rowcount


def record_model_version(settings: Settings, run_id: uuid.UUID, summary: dict[str, Any],
                         dagster_run_id: str | None) -> ModelVersion:
    adapter = Path(summary["adapter_dir"])
    sha = hashlib.sha256((adapter / "adapter_model.safetensors").read_bytes()).hexdigest()
    with session_scope(settings.database_url) as session:
        run = session.get(TrainingRun, run_id)
        top = session.scalar(select(func.max(ModelVersion.version))
                             .where(ModelVersion.user_id == run.user_id))
        version = ModelVersion(
            user_id=run.user_id, training_run_id=run.id, dagster_run_id=dagster_run_id,
            version=(top or 0) + 1, base_model=run.base_model, adapter_path=str(adapter),
            adapter_sha256=sha, status="trained",
            metrics={k: summary[k] for k in ("best_eval_loss", "final_train_loss", "step",
                                             "tokens_trained", "train_seconds")})
        session.add(version)
        session.flush()
        return version


def find_run(settings: Settings, run_id: str) -> dict[str, Any] | None:
    """A training run by its own id or by the Dagster run id that launched it."""
    with session_scope(settings.database_url) as session:
        query = select(TrainingRun)
        try:
            query = query.where(TrainingRun.id == uuid.UUID(run_id))
            row = session.scalar(query)
        except ValueError:
            row = None
        row = row or session.scalar(select(TrainingRun).where(
            TrainingRun.dagster_run_id == run_id).order_by(TrainingRun.created_at.desc()))
        if row is None:
            return None
        user = session.get(User, row.user_id)
        return {"id": row.id, "user": user.external_id, "status": row.status,
                "base_model": row.base_model, "dagster_run_id": row.dagster_run_id,
                "started_at": row.started_at, "finished_at": row.finished_at,
                "error": row.error}


def metrics_after(settings: Settings, run_id: uuid.UUID, step: int) -> list[dict[str, Any]]:
    """training_metrics rows of *run_id* with a step above *step*, in order."""
    columns = ("step", "epoch", "loss", "eval_loss", "learning_rate", "grad_norm",
               "tokens_per_second", "percent_complete", "eta_seconds", "gpu_utilization",
               "vram_used_mb", "gpu_temperature_c")
    with session_scope(settings.database_url) as session:
        rows = session.scalars(select(TrainingMetric).where(
            TrainingMetric.training_run_id == run_id, TrainingMetric.step > step)
            .order_by(TrainingMetric.step))
        return [{c: getattr(r, c) for c in columns} for r in rows]


def loss_curve_png(metrics: list[dict[str, Any]], path: Path, title: str) -> Path:
    """Training and held-out loss against step, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=110)
    ax.plot([m["step"] for m in metrics], [m["loss"] for m in metrics], label="train loss")
    evals = [m for m in metrics if m.get("eval_loss") is not None]
    if evals:
        ax.plot([m["step"] for m in evals], [m["eval_loss"] for m in evals], "o-",
                label="held-out loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (nats per answer token)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def evaluate_latest_version(settings: Settings, external_id: str, max_questions: int = 12,
                            max_control_texts: int = 200) -> tuple[ModelVersion, Any]:
    """Evaluate the user's newest model version on its dataset's held-out questions, against
    its base and with other users' answers as the control; store the figures on the version.
    """
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from clone_pipeline.data.store import read_jsonl
    from clone_pipeline.training.evaluation import evaluate
    from clone_pipeline.training.trainer import resolve_base_model

    with session_scope(settings.database_url) as session:
        user = repository.get_user(session, external_id)
        version = session.scalar(select(ModelVersion).where(ModelVersion.user_id == user.id)
                                 .order_by(ModelVersion.version.desc()).limit(1))
        if version is None:
            raise PreflightError(f"{external_id}: no trained adapter to evaluate")
        run = session.get(TrainingRun, version.training_run_id)
        fmt = run.config.get("train_format", "conversational")
        formatted = session.scalar(select(FormattedTrainingData).where(
            FormattedTrainingData.dataset_id == run.dataset_id,
            FormattedTrainingData.format == fmt)
            .order_by(FormattedTrainingData.created_at.desc()).limit(1))
        others = []
        for other in session.scalars(select(User).where(User.id != user.id)):
            dataset = repository.latest_dataset(session, other.id)
            if dataset is not None:
                others += [r["answer"] for r in read_jsonl(settings.home / dataset.path)
                           if r["source"] == "responses"]
        context_length = run.config.get("context_length", 1024)
        adapter_path, version_id = version.adapter_path, version.id
    eval_records = list(read_jsonl(settings.home / formatted.eval_path))
    if not eval_records:
        raise PreflightError(f"{external_id}: the dataset holds out no questions to evaluate "
                             f"on (eval_fraction is 0?)")
    base = AutoModelForCausalLM.from_pretrained(
        resolve_base_model(run.base_model, settings.models_dir), local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(adapter_path, local_files_only=True)
    model = PeftModel.from_pretrained(base, adapter_path)
    own = [record_messages(fmt, r)[-1]["content"] for r in eval_records]
    report = evaluate(model, tokenizer, eval_records, own, others[:max_control_texts], fmt,
                      context_length, max_questions)
    with session_scope(settings.database_url) as session:
        row = session.get(ModelVersion, version_id)
        row.metrics = {**row.metrics, "evaluation": report.as_dict()}
        row.status = "evaluated"
        session.flush()
        return row, report

