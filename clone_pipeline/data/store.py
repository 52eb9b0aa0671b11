"""Dataset files: JSON Lines written atomically and identified by content hash."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from clone_pipeline.files import atomic_path

_ENCODE = json.JSONEncoder(ensure_ascii=False).encode
_BATCH = 2000  # records per write: fewer syscalls and hash updates


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> str:
    """Write *records* to *path* atomically; return the file's sha256."""
    digest = hashlib.sha256()
    with atomic_path(path) as tmp, tmp.open("wb") as fh:
        batch: list[str] = []
        for record in records:
            batch.append(_ENCODE(record))
            if len(batch) == _BATCH:
                _flush(fh, digest, batch)
        _flush(fh, digest, batch)
        fh.flush()
        os.fsync(fh.fileno())
    return digest.hexdigest()


def _flush(fh, digest, batch: list[str]) -> None:
    if batch:
        chunk = ("\n".join(batch) + "\n").encode()
        digest.update(chunk)
        fh.write(chunk)
        batch.clear()


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{line_no}: invalid JSON ({exc.msg})") from None


def combined_hash(hashes: Iterable[str]) -> str:
    return hashlib.sha256("".join(hashes).encode()).hexdigest()
