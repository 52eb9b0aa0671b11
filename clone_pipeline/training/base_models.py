"""Resolve a base model name (hub id, local path or ``local-tiny``) to its files, offline."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from clone_pipeline.training import local_tiny


class BaseModelError(RuntimeError):
    """The named model's files are not available here; the message says what to do."""


@lru_cache(maxsize=8)
def _load(name_or_path: str, models_dir: str):
    from transformers import AutoTokenizer

    if name_or_path == local_tiny.NAME:
        path = local_tiny.ensure_tokenizer(Path(models_dir))
        return AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    try:
        # local_files_only: never a silent download; a hub id works when its files are cached.
        return AutoTokenizer.from_pretrained(name_or_path, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise BaseModelError(
            f"tokenizer for {name_or_path!r} is not available offline: give a local folder "
            f"or download it first (huggingface-cli download {name_or_path}); "
            f"{type(exc).__name__}") from exc


def load_tokenizer(name_or_path: str, models_dir: Path):
    """The tokenizer of *name_or_path* (cached per process). Raises BaseModelError."""
    return _load(name_or_path, str(models_dir))
