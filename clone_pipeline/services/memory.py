"""A person's memory index, built from their latest collected dataset (cleaned and redacted,
so nothing that never passed redaction is in it) and kept under ``<data root>/memory``.
Passages she recorded herself telling are linked to the recording (from the recordings
table), and to the seconds that say them once voice_alignment has timed the words."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from clone_pipeline.data.examples import Example
from clone_pipeline.data.store import read_jsonl
from clone_pipeline.db import datasets, sources, users, voice
from clone_pipeline.db.session import session_scope
from clone_pipeline.files import data_file, user_folder
from clone_pipeline.memory.index import Embed, MemoryIndex, default_embed
from clone_pipeline.memory.passages import (
    Telling,
    WordTime,
    link_recordings,
    passages_from_examples,
)
from clone_pipeline.settings import Settings


class NoCollectedDataError(LookupError):
    """The person has no collected dataset to build memories from yet."""


@dataclass(frozen=True)
class MemoryBuild:
    folder: Path
    dataset_version: int
    passages: int
    re_embedded: int  # passages new or changed since the last build
    sources: dict[str, int]  # passages per source (responses, life_stories, ...)
    recorded: int = 0  # passages linked to a recording of her telling them


def memory_folder(settings: Settings, external_id: str) -> Path:
    return user_folder(settings, "memory", external_id)


def build_memory(settings: Settings, external_id: str,
                 embed: Embed = default_embed) -> MemoryBuild:
    """Index the passages of the person's latest collected dataset, re-embedding only the
    passages that changed since the previous build."""
    with session_scope(settings.database_url) as session:
        user_id = users.get_user(session, external_id).id
        dataset = datasets.latest_dataset(session, user_id)
        found = (dataset.version, dataset.path) if dataset is not None else None
        told = _spoken_items(session, user_id)
        timings = voice.latest_integration(session, user_id)
        timings_path = (timings.stages.get("voice_text_alignment", {}).get("word_timings_path")
                        if timings is not None else None)
    if found is None:
        raise NoCollectedDataError(f"{external_id}: no collected dataset yet; materialise "
                                   f"collected_training_data first")
    version, path = found
    examples = [Example.from_dict(r) for r in read_jsonl(settings.home / path)]
    tellings = _tellings(told, _word_timings(settings, timings_path))
    passages = link_recordings(passages_from_examples(examples), tellings)
    folder = memory_folder(settings, external_id)
    index, re_embedded = MemoryIndex.build(passages, MemoryIndex.load(folder), embed)
    index.save(folder)
    return MemoryBuild(folder, version, len(passages), re_embedded,
                       dict(Counter(p.source for p in passages)),
                       sum(p.recording_id is not None for p in passages))


def _spoken_items(session, user_id) -> list[tuple[str, str, str, str, float]]:
    """(recording id, source, item id, transcript, seconds) of each recording that tells
    one of the person's answers or stories."""
    return [(r.item_id, "responses" if r.response_id else "life_stories",
             r.response_id or r.story_id, r.text, r.duration_s)
            for r in sources.recordings(session, user_id) if r.response_id or r.story_id]


def _word_timings(settings: Settings, rel: str | None) -> dict[str, list[dict]]:
    """voice_alignment's word timings per recording id (none before it has run, or when its
    file has been pruned since)."""
    if rel is None:
        return {}
    try:
        return json.loads(data_file(settings, rel).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _tellings(told: list[tuple[str, str, str, str, float]],
              timings: dict[str, list[dict]]) -> list[Telling]:
    return [Telling(recording_id, source, item_id, transcript, duration, tuple(
        WordTime(w["char_start"], w["char_end"], w["start"], w["end"])
        for w in timings.get(recording_id, [])))
        for recording_id, source, item_id, transcript, duration in told]


def load_memory(settings: Settings, external_id: str) -> MemoryIndex | None:
    """The person's memory index, or None if it has not been built."""
    return MemoryIndex.load(memory_folder(settings, external_id))


class MemoryCache:
    """Each person's index, loaded on first use and again when a rebuild has replaced it
    (the gateway asks for every chat turn; loading takes milliseconds, searching less)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._loaded: dict[str, tuple[float, MemoryIndex]] = {}

    def get(self, external_id: str) -> MemoryIndex | None:
        manifest = memory_folder(self.settings, external_id) / "manifest.json"
        try:
            stamp = manifest.stat().st_mtime
        except OSError:
            self._loaded.pop(external_id, None)
            return None
        found = self._loaded.get(external_id)
        if found is None or found[0] != stamp:
            index = MemoryIndex.load(manifest.parent)
            if index is None:
                return None
            found = self._loaded[external_id] = (stamp, index)
        return found[1]
