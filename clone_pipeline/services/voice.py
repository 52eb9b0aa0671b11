"""The voice stages: a user's voice profile from their recordings, then the voice-text
alignment and voice-conditioned examples; and the lookups training and speech need."""

from __future__ import annotations

import json
import re
import shutil
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

from clone_pipeline.data.formats import FORMATS, render
from clone_pipeline.data.pii import Redactor, redact_example
from clone_pipeline.data.prompts import TemplateStyle, system_prompt
from clone_pipeline.data.store import write_jsonl
from clone_pipeline.db import sources, users, voice
from clone_pipeline.db.session import session_scope
from clone_pipeline.db.statuses import VoiceIntegrationStatus, VoiceProfileStatus
from clone_pipeline.files import relative_to_root, user_folder, write_json
from clone_pipeline.services.datasets import source_material
from clone_pipeline.settings import Settings
from clone_pipeline.voice.analysis import Recording, VoiceAnalysis, analyse_recordings
from clone_pipeline.voice.integration import IntegrationResult, IntegrationSettings, integrate
from clone_pipeline.voice.plots import pitch_contour_png
from clone_pipeline.voice.profile import SpeakerProfile
from clone_pipeline.voice.synthesis import ProsodyTarget, Speech, VoiceSynthesizer, synthesizer


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


def build_voice_profile(settings: Settings, external_id: str,
                        run_id: str | None = None) -> ProfileOutcome:
    """Analyse the user's recordings and store a voice_profiles row (failed if none usable)."""
    with session_scope(settings.database_url) as session:
        user_id = users.user_id_of(session, external_id)
        recordings = [Recording(r.item_id, r.passage_id, r.text, settings.home / r.file_path)
                      for r in sources.recordings(session, user_id)]
    analysis = analyse_recordings(recordings)
    profile_id = uuid.uuid4()
    folder = user_folder(settings, "voice", external_id)
    artefact = write_json(folder / f"profile-{profile_id}.json", analysis.to_json())
    plot = pitch_contour_png(analysis, folder / f"pitch-{profile_id}.png")
    status = VoiceProfileStatus.READY if analysis.usable else VoiceProfileStatus.FAILED
    quality = {p.recording.recording_id: p.quality.to_dict() for p in analysis.passages}
    with session_scope(settings.database_url) as session:
        voice.add_profile(
            session, id=profile_id, user_id=user_id, dagster_run_id=run_id, status=status,
            profile={**(analysis.profile.to_dict() if analysis.profile else {}),
                     "warnings": analysis.warnings,
                     "artefact": relative_to_root(settings, artefact)},
            quality=quality)
    prune_voice_files(settings, external_id)
    return ProfileOutcome(profile_id, analysis, artefact, plot)


@dataclass(frozen=True)
class StoredProfile:
    id: uuid.UUID
    figures: SpeakerProfile
    artefact: Path  # the full analysis (JSON) under the data root


def latest_profile(settings: Settings, external_id: str) -> StoredProfile | None:
    """The user's latest ready voice profile."""
    with session_scope(settings.database_url) as session:
        row = voice.latest_profile(session, users.user_id_of(session, external_id),
                                   VoiceProfileStatus.READY)
        if row is None:
            return None
        return StoredProfile(row.id, SpeakerProfile.from_dict(row.profile),
                             settings.home / row.profile["artefact"])


def build_voice_alignment(settings: Settings, external_id: str,
                          options: IntegrationSettings | None = None,
                          run_id: str | None = None) -> IntegrationOutcome:
    """Stages 1-5 on the latest ready profile; a voice_llm_integrations row either way."""
    options = options or IntegrationSettings()
    found = latest_profile(settings, external_id)
    if found is None:
        raise NoVoiceProfileError(f"{external_id}: no usable voice profile; materialise "
                                  f"voice_profile first (and check its audio_quality check)")
    analysis = VoiceAnalysis.from_json(json.loads(found.artefact.read_text(encoding="utf-8")))
    material = source_material(settings, external_id)
    written = [r["answer"] for r in material.responses] + \
        [s["content"] for s in material.life_stories]
    system = (system_prompt(material.display_name, material.persona, material.birth_year,
                            TemplateStyle.LEGACY_PRESERVATION)
              if options.personality_consistency else None)
    result = integrate(analysis, written, options)
    redactor = Redactor()  # the transcripts reach the training files like written answers
    for example in result.examples:
        redact_example(example, redactor)
    integration_id = uuid.uuid4()
    folder = user_folder(settings, "voice", external_id) / f"integration-{integration_id}"
    timings = write_json(folder / "word_timings.json",
                         {p.recording.recording_id: [w.to_dict() for w in p.alignment.words]
                          for p in analysis.passages if p.alignment is not None})
    files = {}
    for fmt in FORMATS:
        path = folder / f"{fmt}.jsonl"
        write_jsonl(path, (render(fmt, e, system) for e in result.examples))
        files[fmt] = relative_to_root(settings, path)
    stages = dict(result.stages)
    stages["voice_text_alignment"]["word_timings_path"] = relative_to_root(settings, timings)
    stages["integrated_data"]["files"] = files
    status = VoiceIntegrationStatus.PASSED if result.passed else VoiceIntegrationStatus.FAILED
    with session_scope(settings.database_url) as session:
        voice.add_integration(
            session, id=integration_id, user_id=users.user_id_of(session, external_id),
            voice_profile_id=found.id, dagster_run_id=run_id, status=status,
            settings=result.record()["settings"], stages=stages,
            alignment_accuracy=result.figures["alignment_accuracy"],
            emotional_consistency=result.figures["emotional_consistency"])
    prune_voice_files(settings, external_id)
    return IntegrationOutcome(integration_id, result, folder)


_VOICE_ARTEFACT = re.compile(r"(?:profile|pitch|integration)-([0-9a-f-]{36})(?:\.json|\.png)?")


def prune_voice_files(settings: Settings, external_id: str) -> list[Path]:
    """Remove the user's profile files and integration folders that no current row uses,
    so repeated voice runs do not pile up copies. Current: the newest profile and the
    newest ready one (alignment and speech read it), the newest integration and the newest
    passed one (training reads its examples). Older rows keep their figures. Returns the
    paths removed."""
    with session_scope(settings.database_url) as session:
        user_id = users.user_id_of(session, external_id)
        current = (voice.latest_profile(session, user_id),
                   voice.latest_profile(session, user_id, VoiceProfileStatus.READY),
                   voice.latest_integration(session, user_id),
                   voice.latest_integration(session, user_id,
                                            status=VoiceIntegrationStatus.PASSED))
        keep = {str(row.id) for row in current if row is not None}
    removed = []
    for path in sorted(user_folder(settings, "voice", external_id).iterdir()):
        match = _VOICE_ARTEFACT.fullmatch(path.name)
        if match and match.group(1) not in keep:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(path)
    return removed


def voice_training_file(settings: Settings, external_id: str, fmt: str
                        ) -> tuple[Path, int] | None:
    """(path, repeats) of the latest passed integration's examples in *fmt*, if any."""
    with session_scope(settings.database_url) as session:
        row = voice.latest_integration(session, users.user_id_of(session, external_id),
                                       status=VoiceIntegrationStatus.PASSED)
        if row is None:
            return None
        integrated = row.stages.get("integrated_data", {})
    rel = integrated.get("files", {}).get(fmt)
    return (settings.home / rel, int(integrated.get("repeats_in_training", 1))) if rel else None


def latest_voice(settings: Settings, external_id: str) -> dict | None:
    """The user's newest voice profile (status, SpeakerProfile when ready, per-recording
    quality) and integration figures; None if never profiled."""
    with session_scope(settings.database_url) as session:
        user_id = users.user_id_of(session, external_id)
        profile = voice.latest_profile(session, user_id)
        if profile is None:
            return None
        integration = voice.latest_integration(session, user_id, profile_id=profile.id)
        ready = profile.status == VoiceProfileStatus.READY
        return {"status": profile.status,
                "profile": SpeakerProfile.from_dict(profile.profile) if ready else None,
                "quality": dict(profile.quality),
                "integration": None if integration is None else {
                    "status": integration.status,
                    "alignment_accuracy": integration.alignment_accuracy,
                    "emotional_consistency": integration.emotional_consistency}}


_SYNTH_LOCK = threading.Lock()
_SYNTHESIZERS: dict[str, VoiceSynthesizer] = {}


def speak_as(settings: Settings, external_id: str, text: str, emotion: str = "neutral",
             backend: str = "espeak-ng") -> tuple[Speech, StoredProfile]:
    """*text* said in a voice matched to the user's latest profile (pitch and rate, shaped
    by *emotion*). The synthesiser's calibration is kept per process; one synthesis at a
    time (eSpeak NG's library is not re-entrant). Raises NoVoiceProfileError, ValueError."""
    found = latest_profile(settings, external_id)
    if found is None:
        raise NoVoiceProfileError(f"{external_id}: no usable voice profile; run the "
                                  f"voice_integration job first")
    target = ProsodyTarget.from_profile(found.figures, emotion)
    with _SYNTH_LOCK:
        engine = _SYNTHESIZERS.get(backend) or _SYNTHESIZERS.setdefault(
            backend, synthesizer(backend))
        return engine.synthesize(text, target), found


def integration_of_run(settings: Settings, dagster_run_id: str) -> dict | None:
    """The voice-text alignment one Dagster run recorded (stages, figures, settings)."""
    with session_scope(settings.database_url) as session:
        found = voice.integrations_of_run(session, dagster_run_id)
        if not found:
            return None
        row = found[0]
        return {"integrationId": str(row.id), "status": row.status,
                "settings": dict(row.settings), "stages": dict(row.stages),
                "alignmentAccuracy": row.alignment_accuracy,
                "emotionalConsistency": row.emotional_consistency}
