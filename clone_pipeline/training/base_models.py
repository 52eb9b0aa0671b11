"""Resolve a base model name to its files, offline: one of the models the project builds for
itself (``smollm2-135m-instruct``, the default; ``local-tiny``, for fast tests), a local
folder, or a Hugging Face hub id whose files are already in the local cache."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from clone_pipeline.training import local_tiny, smollm2

# The base model a run uses when its config names none. CLONE_BASE_MODEL changes it for a
# whole installation (read at start-up; the test suite sets local-tiny for speed).
PRODUCT_DEFAULT = smollm2.NAME
DEFAULT_BASE_MODEL = os.environ.get("CLONE_BASE_MODEL") or PRODUCT_DEFAULT

# Names that resolve to a folder the project builds under the models folder.
BUILT_HERE: dict[str, Callable[[Path], Path]] = {
    local_tiny.NAME: local_tiny.ensure_base_model,
    smollm2.NAME: smollm2.ensure_base_model,
}


class BaseModelError(RuntimeError):
    """The named model's files are not available here; the message says what to do."""


def resolve_base_model(name: str, models_dir: Path) -> str:
    """The folder (or cached hub id) to load *name* from, building it first if it is one the
    project builds here. Raises BaseModelError when a packaged model cannot be had."""
    build = BUILT_HERE.get(name)
    if build is None:
        return name
    try:
        return str(build(Path(models_dir)))
    except smollm2.PackagedModelError as exc:
        raise BaseModelError(str(exc)) from exc


@lru_cache(maxsize=8)
def _load(name_or_path: str, models_dir: str):
    from transformers import AutoTokenizer

    if name_or_path == local_tiny.NAME:  # its tokenizer is ready long before its weights
        path = str(local_tiny.ensure_tokenizer(Path(models_dir)))
    else:
        path = resolve_base_model(name_or_path, Path(models_dir))
    try:
        # local_files_only: never a silent download; a hub id works when its files are cached.
        return AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise BaseModelError(
            f"tokenizer for {name_or_path!r} is not available offline: give a local folder "
            f"or download it first (huggingface-cli download {name_or_path}); "
            f"{type(exc).__name__}") from exc


def load_tokenizer(name_or_path: str, models_dir: Path):
    """The tokenizer of *name_or_path* (cached per process). Raises BaseModelError."""
    return _load(name_or_path, str(models_dir))
