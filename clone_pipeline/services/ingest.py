"""Import one person's user export into the domain database, all or nothing.

The steps: find export.json (file, folder or .zip), read it under the size and encoding
limits, validate the whole document and every audio file (collecting every problem), then
copy audio into the data root by content hash and upsert everything in one transaction.
"""

from __future__ import annotations

import contextlib
import errno
import json
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from clone_pipeline.db import sources
from clone_pipeline.db.session import session_scope
from clone_pipeline.db.sources import ListCounts
from clone_pipeline.files import atomic_path, file_sha256, relative_to_root, user_folder
from clone_pipeline.ingest.document import DepthError, depth_problem, normalised, parse
from clone_pipeline.ingest.errors import MAX_PROBLEMS, ExportError, Problem, pointer
from clone_pipeline.ingest.schema import export_problems
from clone_pipeline.settings import Settings
from clone_pipeline.voice.audio_io import AudioError, AudioInfo, probe_audio

MAX_JSON_BYTES = 500 * 1024 * 1024
MAX_AUDIO_BYTES = 200 * 1024 * 1024
MAX_AUDIO_SECONDS = 30 * 60

# Export field -> model column, per list. Fields not named here (and not "id") go to `extra`.
FIELDS = {
    "responses": {"category": "category", "question": "question", "answer": "answer",
                  "emotional_tone": "emotional_tone"},
    "life_stories": {"title": "title", "category": "category", "era": "era",
                     "content": "content"},
    "milestone_messages": {"recipient": "recipient", "occasion": "occasion",
                           "content": "content", "deliver_on": "deliver_on"},
    "voice_recordings": {"passage_id": "passage_id", "text": "text",
                         "response_id": "response_id", "story_id": "story_id",
                         "recorded_at": "recorded_at"},
}
TIMESTAMP_FIELDS = {"created_at", "recorded_at"}
USER_FIELDS = ("display_name", "locale", "birth_year", "persona")


@dataclass
class ImportSummary:
    external_id: str
    user_created: bool
    lists: dict[str, ListCounts] = field(default_factory=dict)
    audio_files_copied: int = 0

    @property
    def changed(self) -> bool:
        return self.user_created or any(
            c.inserted or c.updated or c.pruned for c in self.lists.values())


@dataclass(frozen=True)
class _Audio:
    index: int
    source: Path
    sha256: str
    size: int
    info: AudioInfo


def import_export(path: str | Path, settings: Settings, *, prune: bool = False) -> ImportSummary:
    """Validate and import the export at *path*; raise ExportError (writing nothing) if bad."""
    path = Path(path)
    with _export_folder(path, settings) as (json_path, base_dir):
        doc = _load_json(json_path)
        problems = export_problems(doc)
        audio = _check_audio(doc, base_dir, problems) if not problems else []
        if problems:
            raise ExportError(str(path), problems[:MAX_PROBLEMS],
                              max(0, len(problems) - MAX_PROBLEMS))
        doc = normalised(doc)
        copied: list[Path] = []
        try:
            stored = {a.index: _store_audio(a, doc["user"]["external_id"], settings, copied)
                      for a in audio}
            return _store(settings, doc, stored, prune, len(copied))
        except BaseException:
            _remove_unreferenced(settings, copied)
            raise


def _remove_unreferenced(settings: Settings, copied: list[Path]) -> None:
    """Remove audio this failed import copied, except files that committed rows point at
    (a parallel import of the same user may have stored the same content-addressed file)."""
    rel = {relative_to_root(settings, f): f for f in copied}
    with session_scope(settings.database_url) as session:
        kept = sources.referenced_audio(session, list(rel))
    for path, file in rel.items():
        if path not in kept:
            file.unlink(missing_ok=True)
    for folder in {f.parent for f in copied}:
        with contextlib.suppress(OSError):  # only when this import left it empty
            folder.rmdir()


@contextmanager
def _export_folder(path: Path, settings: Settings) -> Iterator[tuple[Path, Path]]:
    """Yield (export.json, folder its audio paths are relative to) for a file, folder or zip."""
    if not path.exists():
        raise ExportError(str(path), [Problem(str(path), "no such file or folder")])
    if path.is_dir():
        json_path = path / "export.json"
        if not json_path.is_file():
            raise ExportError(str(path), [Problem(str(json_path), "folder has no export.json")])
        yield json_path, path
        return
    if path.suffix.lower() != ".zip":
        yield path, path.parent
        return
    tmp_root = settings.home / "tmp"
    tmp_root.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(dir=tmp_root) as tmp:
            _safe_extract(path, Path(tmp))
            candidates = sorted(Path(tmp).rglob("export.json"), key=lambda p: len(p.parts))
            if not candidates:
                raise ExportError(str(path), [Problem(str(path), "zip holds no export.json")])
            yield candidates[0], candidates[0].parent
    finally:
        with contextlib.suppress(OSError):  # left in place while another import uses it
            tmp_root.rmdir()


def _safe_extract(archive: Path, dest: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            total = sum(m.file_size for m in members)
            if total > MAX_JSON_BYTES + 64 * MAX_AUDIO_BYTES:
                raise ExportError(str(archive), [Problem(str(archive), "zip is too large")])
            for m in members:
                target = (dest / m.filename).resolve()
                if not target.is_relative_to(dest.resolve()):
                    raise ExportError(str(archive), [Problem(
                        m.filename, "zip entry points outside the archive")])
            zf.extractall(dest)
    except zipfile.BadZipFile as exc:
        raise ExportError(str(archive), [Problem(str(archive), "not a readable zip file")]) \
            from exc


def _load_json(json_path: Path) -> Any:
    where = str(json_path)
    size = json_path.stat().st_size
    if size > MAX_JSON_BYTES:
        raise ExportError(where, [Problem(where, f"JSON file is {size / 2**20:.0f} MB; "
                                                 f"the limit is 500 MB")])
    raw = json_path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, col = _line_col(raw, exc.start)
        raise ExportError(where, [Problem(f"line {line}, column {col}",
                                          "not UTF-8 (the export must be UTF-8 encoded)")]) \
            from None
    try:
        return parse(text)
    except json.JSONDecodeError as exc:
        raise ExportError(where, [Problem(f"line {exc.lineno}, column {exc.colno}",
                                          f"invalid JSON: {exc.msg}")]) from None
    except DepthError as exc:
        raise ExportError(where, [depth_problem(exc.path)]) from None


def _line_col(raw: bytes, offset: int) -> tuple[int, int]:
    before = raw[:offset]
    line = before.count(b"\n") + 1
    col = offset - (before.rfind(b"\n") + 1) + 1
    return line, col


def _check_audio(doc: dict, base_dir: Path, problems: list[Problem]) -> list[_Audio]:
    """Decode every recording's file; append a problem for each bad one."""
    found: list[_Audio] = []
    base = base_dir.resolve()
    for index, item in enumerate(doc.get("voice_recordings") or []):
        rel = item["file"]
        where = f"{pointer(['voice_recordings', index, 'file'])} ({rel})"
        try:
            source = _audio_source(base, rel)
            size = source.stat().st_size
            if size > MAX_AUDIO_BYTES:
                raise AudioError(f"audio file is {size / 2**20:.0f} MB; the limit is 200 MB")
            info = probe_audio(source, MAX_AUDIO_SECONDS)
        except AudioError as exc:
            problems.append(Problem(where, str(exc)))
            continue
        except OSError as exc:  # permissions, a file vanishing mid-import
            problems.append(Problem(where, f"audio file cannot be read ({exc.strerror})"))
            continue
        if info.duration_s <= 0:
            problems.append(Problem(where, "recording is empty"))
            continue
        found.append(_Audio(index, source, file_sha256(source), size, info))
    return found


def _audio_source(base: Path, rel: str) -> Path:
    """The regular file *rel* names inside *base*, every link followed; AudioError if none.
    Whether the path stays inside is decided before anything is said about existence."""
    if "\0" in rel:
        raise AudioError("audio path contains a NUL character")
    outside = AudioError("audio path must be relative to the export's folder and stay "
                         "inside it")
    if Path(rel).is_absolute():
        raise outside
    try:
        if not (base / rel).resolve().is_relative_to(base):
            raise outside
        source = (base / rel).resolve(strict=True)
    except FileNotFoundError:
        raise AudioError("audio file not found") from None
    except RuntimeError:  # how Python before 3.13 reports a symlink loop
        raise AudioError("audio path is a symlink loop") from None
    except OSError as exc:
        raise AudioError("audio path is a symlink loop" if exc.errno == errno.ELOOP
                         else f"audio path cannot be read ({exc.strerror})") from None
    if not source.is_file():
        raise AudioError("audio path is not a regular file")
    return source


def _store_audio(audio: _Audio, external_id: str, settings: Settings,
                 copied: list[Path]) -> tuple[_Audio, str]:
    """Copy into audio/<user>/<sha256><ext> atomically; return (audio, path under data root)."""
    # Named by content: an Ogg file sent as "x.webm" is stored as .ogg, so later decoders
    # are not misled.
    target = user_folder(settings, "audio", external_id) / f"{audio.sha256}{audio.info.suffix}"
    if not target.exists():
        with atomic_path(target) as tmp:
            shutil.copyfile(audio.source, tmp)
        copied.append(target)
    return audio, relative_to_root(settings, target)


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _store(settings: Settings, doc: dict, stored: dict[int, tuple[_Audio, str]], prune: bool,
           copied: int) -> ImportSummary:
    u = doc["user"]
    user_values = {"display_name": u["display_name"], "locale": u.get("locale"),
                   "birth_year": u.get("birth_year"), "persona": u.get("persona") or {},
                   "extra": {k: v for k, v in u.items()
                             if k not in (*USER_FIELDS, "external_id")}}
    items = {name: [(item["id"], _item_values(
        name, item, stored.get(index) if name == "voice_recordings" else None))
        for index, item in enumerate(doc.get(name) or [])] for name in FIELDS}
    with session_scope(settings.database_url) as session:
        outcome = sources.upsert_material(session, u["external_id"], user_values, items, prune)
    return ImportSummary(u["external_id"], outcome.user_created, outcome.lists, copied)


def _item_values(list_name: str, item: dict, audio: tuple[_Audio, str] | None) -> dict:
    mapping = FIELDS[list_name]
    values: dict[str, Any] = {}
    for key, column in mapping.items():
        value = item.get(key)
        if key in TIMESTAMP_FIELDS:
            value = _parse_time(value)
        elif key == "deliver_on" and value:
            value = date.fromisoformat(value)
        values[column] = value
    known = {"id", "created_at", "file", *mapping}
    values["extra"] = {k: v for k, v in item.items() if k not in known}
    if created := _parse_time(item.get("created_at")):
        values["created_at"] = created
    if audio is not None:
        info, rel = audio
        values.update(file_path=rel, sha256=info.sha256, original_name=item["file"],
                      audio_format=_format_label(info.info), sample_rate=info.info.sample_rate,
                      channels=info.info.channels, duration_s=round(info.info.duration_s, 3),
                      size_bytes=info.size)
    return values


def _format_label(info: AudioInfo) -> str:
    """"container/codec" (ogg/vorbis, wav/pcm_s16le), or the container alone where the pair
    would not fit the 16-character column."""
    label = f"{info.format}/{info.codec}"
    return label if len(label) <= 16 else info.format
