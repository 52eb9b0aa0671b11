"""The data-root layout and the one way files are written atomically.

Every folder that belongs to a user is built by ``user_folder``, which refuses ids that could
name the root itself or anything outside it; every file or folder a reader might see
half-written is written through ``atomic_path``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from clone_pipeline.settings import Settings

# Ids that become folder names and partition keys: start with a letter or digit (so never
# "." or ".."), then letters, digits, ".", "_" or "-"; matched in full (no trailing newline).
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

# The per-user folders under the data root, each <root>/<kind>/<user id>.
USER_FOLDER_KINDS = ("datasets", "audio", "adapters", "voice", "memory", "facts")


class UnsafePathError(ValueError):
    """A path built from outside input would leave its folder."""


def check_id(value: str, what: str = "user id") -> str:
    if not isinstance(value, str) or not SAFE_ID.fullmatch(value):
        raise UnsafePathError(f"{what} {value!r} is not allowed: use 1-128 letters, digits, "
                              f"'.', '_' or '-', starting with a letter or digit")
    return value


def user_folder(settings: Settings, kind: str, external_id: str) -> Path:
    """``<data root>/<kind>/<external_id>``, checked to be exactly one level inside its kind."""
    if kind not in USER_FOLDER_KINDS:
        raise ValueError(f"unknown user folder kind {kind!r}")
    base = (settings.home / kind).resolve()
    path = (base / check_id(external_id)).resolve()
    if path.parent != base:
        raise UnsafePathError(f"{path} is not a folder of its own under {base}")
    return path


def user_folders(settings: Settings, external_id: str) -> list[Path]:
    """Every folder the data root keeps for one user."""
    return [user_folder(settings, kind, external_id) for kind in USER_FOLDER_KINDS]


def relative_to_root(settings: Settings, path: Path) -> str:
    """How the domain tables record a file: its path under the data root."""
    return path.resolve().relative_to(settings.home).as_posix()


def data_file(settings: Settings, relative: str) -> Path:
    """The file a domain table records as *relative* (see relative_to_root), checked to be
    inside the data root, so a row can never make a reader open anything outside it."""
    root = settings.home.resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root) or path == root:
        raise UnsafePathError(f"{relative!r} is not a file under the data root {root}")
    return path


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary sibling of *target* to write (a file or a folder) in.

    When the block ends cleanly the temporary takes *target*'s place in one rename (an
    existing folder is swapped out, then removed), so a reader sees the old or the new,
    never half of either. On an error the temporary is removed and *target* is untouched.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp = target.with_name(f".{target.name}.tmp{tag}")
    try:
        yield tmp
        if target.is_dir() and not target.is_symlink():
            old = target.with_name(f".{target.name}.old{tag}")
            os.replace(target, old)
            os.replace(tmp, target)
            remove_path(old)
        else:
            os.replace(tmp, target)
    finally:
        remove_path(tmp)


def pyplot():
    """matplotlib's pyplot, headless, with its font cache in the system temp folder rather
    than under $HOME (nothing is written outside the data root and the temp folder)."""
    os.environ.setdefault("MPLCONFIGDIR", os.path.join(tempfile.gettempdir(),
                                                       "clone_pipeline-matplotlib"))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_json(path: Path, data: Any) -> Path:
    """*data* as indented UTF-8 JSON, written atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False, default=str),
                       encoding="utf-8")
    return path


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, read a megabyte at a time."""
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def remove_path(path: Path) -> None:
    """Delete a file or a folder (not through a symlink); gone already is fine."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
