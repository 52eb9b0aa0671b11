"""The voice stages against the real domain database (SQLite and PostgreSQL)."""

import json
import re
import shutil
import uuid
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from sqlalchemy import select

from clone_pipeline.data.formats import FORMATS
from clone_pipeline.db import users, voice
from clone_pipeline.db.models import VoiceLlmIntegration, VoiceProfile
from clone_pipeline.db.session import session_scope
from clone_pipeline.demo import PERSONAS_DIR
from clone_pipeline.services.ingest import import_export
from clone_pipeline.services.voice import (
    NoVoiceProfileError,
    build_voice_alignment,
    build_voice_profile,
    voice_training_file,
)
from clone_pipeline.voice.integration import IntegrationSettings
from clone_pipeline.voice.profile import SpeakerProfile


def test_profile_and_integration_are_stored_with_their_figures(settings):
    import_export(PERSONAS_DIR / "walter-okafor", settings)
    profile = build_voice_profile(settings, "walter-okafor", "run-1")
    assert profile.plot.is_file() and profile.artefact.is_file()
    outcome = build_voice_alignment(settings, "walter-okafor", run_id="run-2")
    result = outcome.result
    assert result.passed, result.reasons
    assert list(result.stages) == ["voice_analysis", "text_analysis", "voice_text_alignment",
                                   "integrated_data", "validation"]
    assert all("seconds" in s and "status" in s for s in result.stages.values())

    with session_scope(settings.database_url) as session:
        vp = session.scalars(select(VoiceProfile)).one()
        vi = session.scalars(select(VoiceLlmIntegration)).one()
        assert vp.status == "ready" and vp.dagster_run_id == "run-1"
        assert 60 < vp.profile["pitch"]["median_hz"] < 140  # a low male eSpeak voice
        assert len(vp.profile["speaker_embedding"]) == 256
        stored = {k: v for k, v in vp.profile.items() if k not in ("warnings", "artefact")}
        assert SpeakerProfile.from_dict(vp.profile).to_dict() == stored  # typed round trip
        assert all(q["usable"] for q in vp.quality.values())
        assert vi.status == "passed" and vi.voice_profile_id == vp.id
        assert vi.alignment_accuracy >= 0.8 and vi.emotional_consistency is not None
        assert vi.settings["voice_weight"] == 0.7
        stages = vi.stages

    timings = json.loads((settings.home / stages["voice_text_alignment"]["word_timings_path"])
                         .read_text())
    assert set(timings) == {"v-001", "v-002", "v-003", "v-004", "v-005", "v-006"}
    assert timings["v-001"][0]["word"] == "When"
    for fmt in FORMATS:
        rows = (settings.home / stages["integrated_data"]["files"][fmt]).read_text().splitlines()
        assert len(rows) == len(result.examples) > 0
    path, repeats = voice_training_file(settings, "walter-okafor", "conversational")
    record = json.loads(path.read_text().splitlines()[0])
    assert record["messages"][0]["role"] == "system"  # personality consistency
    assert record["messages"][-1]["content"].startswith("[voice rate=")
    assert repeats == 1


def test_settings_shape_the_examples(sqlite_settings):
    import_export(PERSONAS_DIR / "margaret-ellis", sqlite_settings)
    build_voice_profile(sqlite_settings, "margaret-ellis")
    plain = build_voice_alignment(
        sqlite_settings, "margaret-ellis",
        IntegrationSettings(prosody_mapping=False, speech_pattern_learning=False,
                            emotional_alignment=False, voice_weight=1.6))
    answers = [e.answer for e in plain.result.examples]
    assert not any("[voice" in a or "*" in a or " / " in a for a in answers)
    assert plain.result.figures["emotional_consistency"] is None
    assert plain.result.stages["integrated_data"]["repeats_in_training"] == 2


def test_user_without_usable_audio_gets_a_failed_profile_not_a_crash(sqlite_settings,
                                                                     tmp_path):
    folder = tmp_path / "export"
    shutil.copytree(PERSONAS_DIR / "walter-okafor", folder)
    for wav in (folder / "audio").iterdir():  # same names, now silence
        sf.write(str(wav), np.zeros(16000 * 4, np.float32), 16000)
    import_export(folder, sqlite_settings)
    outcome = build_voice_profile(sqlite_settings, "walter-okafor")
    assert not outcome.analysis.usable and outcome.plot is None
    assert all("silent" in r[0] for r in outcome.analysis.reasons().values())
    with session_scope(sqlite_settings.database_url) as session:
        assert session.scalars(select(VoiceProfile)).one().status == "failed"
    with pytest.raises(NoVoiceProfileError, match="no usable voice profile"):
        build_voice_alignment(sqlite_settings, "walter-okafor")
    assert voice_training_file(sqlite_settings, "walter-okafor", "conversational") is None


def test_readme_shows_the_profile_the_code_measures_for_margaret(sqlite_settings):
    """The README's profile block is pasted from a real run; the analysis is deterministic on
    the demo audio, so a change in the figures must come with the README."""
    import_export(PERSONAS_DIR / "margaret-ellis", sqlite_settings)
    measured = build_voice_profile(sqlite_settings, "margaret-ellis").analysis.profile
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    shown = re.search(r"Margaret's profile from `make demo`.*?```\n(.*?)\n```", readme,
                      re.DOTALL).group(1)
    assert shown == measured.summary()


def test_repeated_voice_runs_keep_only_the_files_current_rows_use(sqlite_settings, tmp_path):
    """Each run writes a new profile (and integration); the files of rows nothing reads any
    more go, the newest ready profile and newest passed integration stay for speech and
    training even when a newer run failed."""
    folder = tmp_path / "export"
    shutil.copytree(PERSONAS_DIR / "walter-okafor", folder)
    for wav in (folder / "audio").iterdir():  # silence: a fast analysis, a failed profile
        sf.write(str(wav), np.zeros(16000 * 4, np.float32), 16000)
    import_export(folder, sqlite_settings)
    first = build_voice_profile(sqlite_settings, "walter-okafor")
    voice_dir = first.artefact.parent

    ids = {name: uuid.uuid4() for name in ("ready", "passed", "failed_integration")}
    with session_scope(sqlite_settings.database_url) as session:
        user_id = users.user_id_of(session, "walter-okafor")
        voice.add_profile(session, id=ids["ready"], user_id=user_id, status="ready")
    with session_scope(sqlite_settings.database_url) as session:
        voice.add_integration(session, id=ids["passed"], user_id=user_id, status="passed")
    with session_scope(sqlite_settings.database_url) as session:
        voice.add_integration(session, id=ids["failed_integration"], user_id=user_id,
                              status="failed")
    (voice_dir / f"profile-{ids['ready']}.json").write_text("{}")
    (voice_dir / f"pitch-{ids['ready']}.png").write_bytes(b"png")
    for name in ("passed", "failed_integration"):
        (voice_dir / f"integration-{ids[name]}").mkdir()
        (voice_dir / f"integration-{ids[name]}" / "chat.jsonl").write_text("")

    second = build_voice_profile(sqlite_settings, "walter-okafor")
    assert not first.artefact.exists()  # superseded by the second (failed) profile
    assert sorted(p.name for p in voice_dir.iterdir()) == sorted([
        second.artefact.name, f"profile-{ids['ready']}.json", f"pitch-{ids['ready']}.png",
        f"integration-{ids['passed']}", f"integration-{ids['failed_integration']}"])
