"""What a finished training process reports to whoever launched it (over Dagster Pipes):
the outcome and its figures, as a typed record that travels as JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class TrainingSummary:
    status: str  # completed | early_stopped | cancelled
    step: int
    total_steps: int
    adapter_dir: str | None  # None when cancelled before the end
    checkpoint_dir: str
    best_eval_loss: float | None
    final_train_loss: float | None
    tokens_trained: int  # answer tokens seen
    train_seconds: float
    micro_batch_size: int
    precision: str
    hardware: dict[str, Any]  # HardwareReport.as_dict() and the number of processes

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingSummary:
        return cls(**{f.name: data[f.name] for f in fields(cls)})

    @property
    def hardware_profile(self) -> str:
        return self.hardware["profile"]["name"]
