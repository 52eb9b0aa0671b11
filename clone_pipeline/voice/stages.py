"""The voice stages as plain functions: read the domain DB, do the work, record it.
The Dagster assets voice_profile and voice_alignment are thin wrappers around these.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from clone_pipeline.data.formats import FORMATS, render
from clone_pipeline.data.prompts import system_prompt
from clone_pipeline.data.store import write_jsonl
from clone_pipeline.db import repository
from clone_pipeline.db.models import VoiceLlmIntegration, VoiceProfile, VoiceRecording
from clone_pipeline.db.session import session_scope
from clone_pipeline.settings import Settings
from clone_pipeline.voice.analysis import Recording, VoiceAnalysis, analyse_recordings
from clone_pipeline.voice.integration import IntegrationResult, IntegrationSettings, integrate


class NoVoiceProfileError(RuntimeError):
    """voice_alignment needs a voice profile with at least one usable recording."""


@dataclass
class ProfileOutcome:
    profile_id: uuid.UUID
    analysis: VoiceAnalysis
    artefact: Path  # JSON: profile, per-passage quality, word timings, sentences
    plot: Path | None


@dataclass
class IntegrationOutcome:
    integration_id: uuid.UUID
    result: IntegrationResult
    folder: Path  # word timings + voice-conditioned examples in every format


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)  # atomic: a reader never sees half a profile


def build_voice_profile(settings: Settings, external_id: str,
                        run_id: str | None = None) -> ProfileOutcome:
    """Analyse the user's recordings and store a voice_profiles row (failed if none usable)."""
    with session_scope(settings.database_url) as session:
        user = repository.get_user(session, external_id)
        rows = session.scalars(select(VoiceRecording).where(VoiceRecording.user_id == user.id)
                               .order_by(VoiceRecording.item_id)).all()
        recordings = [Recording(r.item_id, r.passage_id, r.text,
                                settings.home / r.file_path) for r in rows]
        user_id = user.id
    analysis = analyse_recordings(recordings)
    profile_id = uuid.uuid4()
    folder = settings.voice_dir / external_id
    artefact = folder / f"profile-{profile_id}.json"
    _write_json(artefact, analysis.to_json())
    plot = pitch_contour_png(analysis, folder / f"pitch-{profile_id}.png")
    status = "ready" if analysis.usable else "failed"
    quality = {p.recording.recording_id: p.quality.to_dict() for p in analysis.passages}
    with session_scope(settings.database_url) as session:
        session.add(VoiceProfile(
            id=profile_id, user_id=user_id, dagster_run_id=run_id, status=status,
            profile={**analysis.profile, "warnings": analysis.warnings,
                     "artefact": str(artefact.relative_to(settings.home))},
            quality=quality))
    return ProfileOutcome(profile_id, analysis, artefact, plot)


def pitch_contour_png(analysis: VoiceAnalysis, path: Path) -> Path | None:
    """Pitch contour of the first usable passage with its words, for people to look at."""
    passage = next((p for p in analysis.usable if p.contour is not None), None)
    if passage is None:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    times, f0 = passage.contour
    f0 = np.where(f0 > 0, f0, np.nan)
    fig, ax = plt.subplots(figsize=(10, 3.2), dpi=100)
    ax.plot(times, f0, ".", markersize=2.5, color="#1f77b4")
    median = analysis.profile["pitch"]["median_hz"]
    ax.axhline(median, color="#888", linewidth=0.8, linestyle="--")
    top = np.nanmax(f0) if np.any(np.isfinite(f0)) else median * 1.5
    for w in passage.alignment.words:
        ax.axvline(w.start, color="#ddd", linewidth=0.5, zorder=0)
        ax.text(w.start, top * 1.02, w.word, fontsize=6, rotation=60, va="bottom")
    ax.set_xlabel("seconds")
    ax.set_ylabel("pitch (Hz)")
    ax.set_title(f"Pitch contour, passage {passage.recording.passage_id or ''} "
                 f"(median {median:.0f} Hz)", fontsize=9)
    ax.set_ylim(analysis.profile["pitch"]["floor_hz"], top * 1.25)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def latest_profile(settings: Settings, external_id: str) -> tuple[uuid.UUID, dict] | None:
    """(id, profile) of the user's latest ready voice profile."""
    with session_scope(settings.database_url) as session:
        user = repository.get_user(session, external_id)
        row = repository.latest_row(session, VoiceProfile, user.id, "ready")
        return (row.id, dict(row.profile)) if row else None


def build_voice_alignment(settings: Settings, external_id: str,
                          options: IntegrationSettings | None = None,
                          run_id: str | None = None) -> IntegrationOutcome:
    """Stages 1-5 on the latest ready profile; a voice_llm_integrations row either way."""
    options = options or IntegrationSettings()
    found = latest_profile(settings, external_id)
    if found is None:
        raise NoVoiceProfileError(f"{external_id}: no usable voice profile; materialise "
                                  f"voice_profile first (and check its audio_quality check)")
    profile_id, profile = found
    analysis = VoiceAnalysis.from_json(json.loads(
        (settings.home / profile["artefact"]).read_text(encoding="utf-8")))
    with session_scope(settings.database_url) as session:
        user = repository.get_user(session, external_id)
        material = repository.load_source_material(session, external_id)
        written = [r["answer"] for r in material.responses] + \
            [s["content"] for s in material.life_stories]
        system = (system_prompt(user.display_name, user.persona, user.birth_year,
                                 "legacy_preservation")
                  if options.personality_consistency else None)
        user_id = user.id
    result = integrate(analysis, written, options)
    integration_id = uuid.uuid4()
    folder = settings.voice_dir / external_id / f"integration-{integration_id}"
    _write_json(folder / "word_timings.json",
                {p.recording.recording_id: [w.to_dict() for w in p.alignment.words]
                 for p in analysis.passages if p.alignment is not None})
    files = {}
    for fmt in FORMATS:
        path = folder / f"{fmt}.jsonl"
        write_jsonl(path, (render(fmt, e, system) for e in result.examples))
        files[fmt] = str(path.relative_to(settings.home))
    stages = dict(result.stages)
    stages["voice_text_alignment"]["word_timings_path"] = str(
        (folder / "word_timings.json").relative_to(settings.home))
    stages["integrated_data"]["files"] = files
    with session_scope(settings.database_url) as session:
        session.add(VoiceLlmIntegration(
            id=integration_id, user_id=user_id, voice_profile_id=profile_id,
            dagster_run_id=run_id, status="passed" if result.passed else "failed",
            settings=result.record()["settings"], stages=stages,
            alignment_accuracy=result.figures["alignment_accuracy"],
            emotional_consistency=result.figures["emotional_consistency"]))
    return IntegrationOutcome(integration_id, result, folder)


def voice_training_file(settings: Settings, external_id: str, fmt: str
                        ) -> tuple[Path, int] | None:
    """(path, repeats) of the latest passed integration's examples in *fmt*, if any."""
    with session_scope(settings.database_url) as session:
        user = repository.get_user(session, external_id)
        row = repository.latest_row(session, VoiceLlmIntegration, user.id, "passed")
        if row is None:
            return None
        rel = row.stages.get("integrated_data", {}).get("files", {}).get(fmt)
        repeats = int(row.stages.get("integrated_data", {}).get("repeats_in_training", 1))
    return (settings.home / rel, repeats) if rel else None
