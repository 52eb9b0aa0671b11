"""What the training asset and its child process exchange: the job (a typed description that
travels as JSON in the Dagster Pipes extras) and the names of what comes back (the metrics
message kind, the summary file). The asset builds a TrainingJob, the child reads one back:
no other module reads the job's fields by name."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

from clone_pipeline.training.config import TrainConfig

METRICS_MESSAGE = "training_metrics"  # the custom message kind carrying one step's figures
RESULT_FILE = "result.json"  # the summary, in the run's output folder


class TrainingJobError(ValueError):
    """A job description the training process cannot read; the message says which fields."""


@dataclass(frozen=True)
class TrainingJob:
    """One fine-tuning job: the config, the files it reads and the folders it writes."""

    config: TrainConfig
    train_path: Path
    eval_path: Path
    output_dir: Path  # checkpoint, adapter and the summary (RESULT_FILE)
    models_dir: Path  # where base models are found or built
    strategy: str = "ddp"  # ddp | fsdp, when several processes train (training/parallel.py)
    # The voice-conditioned examples (include_voice_integration), added voice_repeats times.
    voice_path: Path | None = None
    voice_repeats: int = 1

    def __post_init__(self) -> None:
        if self.voice_repeats < 1:
            raise TrainingJobError(f"voice_repeats must be at least 1, not {self.voice_repeats}")

    @property
    def result_file(self) -> Path:
        return self.output_dir / RESULT_FILE

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values (paths as strings): the Pipes extras."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {name: str(value) if isinstance(value, Path) else value
                for name, value in values.items()} | {"config": self.config.as_dict()}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainingJob:
        """The job *values* (as_dict, possibly through JSON) describe; TrainingJobError if a
        field is unknown or a required one is missing."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        missing = sorted(name for name, f in known.items()
                         if f.default is MISSING and name not in values)
        if unknown or missing:
            found = "; ".join(part for part in (
                f"unknown field(s) {', '.join(unknown)}" if unknown else "",
                f"missing field(s) {', '.join(missing)}" if missing else "") if part)
            raise TrainingJobError(
                f"training job: {found}. The launching process and the training process run "
                f"different versions of clone_pipeline: install the same version in both "
                f"(the code location's environment and the training image)")
        voice = values.get("voice_path")
        return cls(config=TrainConfig.from_dict(values["config"]),
                   train_path=Path(values["train_path"]), eval_path=Path(values["eval_path"]),
                   output_dir=Path(values["output_dir"]), models_dir=Path(values["models_dir"]),
                   strategy=values.get("strategy", cls.strategy),
                   voice_path=Path(voice) if voice else None,
                   voice_repeats=int(values.get("voice_repeats", cls.voice_repeats)))
