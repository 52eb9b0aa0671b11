"""Environment-driven settings: where data lives and which databases to use.

Everything the project writes goes under ``CLONE_HOME`` (the data root) or ``DAGSTER_HOME``
(Dagster's own instance); nothing is written anywhere else.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOME = Path.home() / ".clone_pipeline"


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    dagster_home: Path
    models_dir: Path
    engine_url: str | None = None  # an inference engine already running elsewhere
    engine_key: str | None = None
    cache_url: str | None = None  # Redis for the gateway's response cache (replicas)
    dagster_url: str = "http://127.0.0.1:3000"  # the webserver queued launches go through
    gpu_slots: int | None = None  # concurrent GPU runs; None: one per detected GPU (min 1)
    train_processes: int | None = None  # data-parallel processes a run; None: GPUs per slot
    train_strategy: str = "ddp"  # ddp | fsdp, when a run trains on several GPUs
    max_run_seconds: int = 86_400  # dagster/max_runtime of launched runs: a hung run ends
    retention_days: int = 30  # housekeeping archives finished runs and versions older than this

    @property
    def serving_dir(self) -> Path:
        """The engine's state file and logs, written by `clone-pipeline serve`."""
        return self.home / "serving"

    @property
    def datasets_dir(self) -> Path:
        return self.home / "datasets"

    @property
    def adapters_dir(self) -> Path:
        """Per-user fine-tuned adapters and their checkpoints (personal: under the root)."""
        return self.home / "adapters"

    @property
    def audio_dir(self) -> Path:
        return self.home / "audio"

    @property
    def voice_dir(self) -> Path:
        """Voice profiles, word timings, plots and voice-conditioned data, per user."""
        return self.home / "voice"

    def user_dataset_dir(self, external_id: str) -> Path:
        return self.datasets_dir / external_id

    def ensure_dirs(self) -> None:
        for path in (self.home, self.datasets_dir, self.audio_dir, self.models_dir,
                     self.dagster_home):
            path.mkdir(parents=True, exist_ok=True)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read settings from the environment (``os.environ`` unless *env* is given).

    CLONE_HOME           data root (default ~/.clone_pipeline)
    CLONE_DATABASE_URL   domain database (default: SQLite file under the data root)
    DAGSTER_HOME         Dagster instance folder (default: CLONE_HOME/dagster)
    CLONE_MODELS_DIR     base models and tokenizers (default CLONE_HOME/models; may be
                         shared between data roots)
    CLONE_ENGINE_URL     an OpenAI-compatible vLLM server already running (with
                         CLONE_ENGINE_KEY); unset, `clone-pipeline serve` starts one
    CLONE_CACHE_URL      redis://... for the gateway's response cache (default in memory)
    CLONE_DAGSTER_URL    the Dagster webserver queued runs are submitted to
                         (default http://127.0.0.1:3000, what `clone-pipeline ui` starts)
    CLONE_GPU_SLOTS      GPU runs at once (default: one per GPU NVML finds, at least 1)
    CLONE_TRAIN_PROCESSES  processes (GPUs) one training run uses, under accelerate launch
                         (default: the GPUs NVML finds divided between the GPU slots, at least 1)
    CLONE_TRAIN_STRATEGY ddp (default) or fsdp for a run on several GPUs
    CLONE_MAX_RUNTIME_S  seconds after which a queued run is ended as hung (default 86400)
    """
    env = os.environ if env is None else env
    home = Path(env.get("CLONE_HOME") or DEFAULT_HOME).expanduser().resolve()
    database_url = env.get("CLONE_DATABASE_URL") or f"sqlite:///{home / 'clone.db'}"
    dagster_home = Path(env.get("DAGSTER_HOME") or home / "dagster").expanduser().resolve()
    return Settings(
        home=home,
        database_url=database_url,
        dagster_home=dagster_home,
        models_dir=Path(env.get("CLONE_MODELS_DIR") or home / "models").expanduser().resolve(),
        engine_url=env.get("CLONE_ENGINE_URL") or None,
        engine_key=env.get("CLONE_ENGINE_KEY") or None,
        cache_url=env.get("CLONE_CACHE_URL") or None,
        dagster_url=(env.get("CLONE_DAGSTER_URL") or "http://127.0.0.1:3000").rstrip("/"),
        gpu_slots=_positive_int(env, "CLONE_GPU_SLOTS"),
        train_processes=_positive_int(env, "CLONE_TRAIN_PROCESSES"),
        train_strategy=_choice(env, "CLONE_TRAIN_STRATEGY", ("ddp", "fsdp")),
        max_run_seconds=_positive_int(env, "CLONE_MAX_RUNTIME_S") or 86_400,
        retention_days=_positive_int(env, "CLONE_RETENTION_DAYS") or 30,
    )


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    raw = (env.get(name) or choices[0]).lower()
    if raw not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, not {raw!r}")
    return raw


def _positive_int(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name)
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{name} must be a whole number of 1 or more, not {raw!r}")
    return int(raw)
