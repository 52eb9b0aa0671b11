"""voice_profile and voice_alignment through real Dagster runs, for two users and one whose
recordings are all unusable."""

import shutil

import dagster as dg
import numpy as np
import soundfile as sf
from sqlalchemy import select

from clone_pipeline.db.models import VoiceLlmIntegration, VoiceProfile
from clone_pipeline.db.session import session_scope
from clone_pipeline.definitions import defs
from clone_pipeline.demo import PERSONAS_DIR
from clone_pipeline.launch.launch import run_job_for_user
from clone_pipeline.services.ingest import import_export

PROFILE = dg.AssetKey("voice_profile")
ALIGNMENT = dg.AssetKey("voice_alignment")


def test_voice_assets_for_two_users(env_settings, instance, import_persona):
    graph = defs.resolve_asset_graph()
    assert graph.get(ALIGNMENT).parent_keys == {PROFILE}
    import_persona("margaret-ellis")
    import_persona("walter-okafor")
    config = {"ops": {"voice_alignment": {"config": {"voice_weight": 0.8}}}}
    outcomes = {u: run_job_for_user(instance, "voice_integration", u, config)
                for u in ("margaret-ellis", "walter-okafor")}
    for user, outcome in outcomes.items():
        assert outcome.success, (user, outcome.error)
        assert outcome.materialized == ["voice_alignment", "voice_profile"]
        assert not outcome.failed_checks

    def metadata(key, user):
        [record] = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=[user]), limit=1).records
        return record.asset_materialization.metadata

    margaret, walter = (metadata(PROFILE, u) for u in ("margaret-ellis", "walter-okafor"))
    # Two different voices told apart (the demo renders Margaret higher than Walter).
    assert margaret["pitch_median_hz"].value > 1.15 * walter["pitch_median_hz"].value
    assert "data:image/png;base64," in margaret["pitch_contour"].value
    aligned = metadata(ALIGNMENT, "walter-okafor")
    assert aligned["alignment_accuracy"].value >= 0.8
    assert "voice_text_alignment" in aligned["stages"].value

    with session_scope(env_settings.database_url) as s:
        profiles = s.scalars(select(VoiceProfile)).all()
        integrations = s.scalars(select(VoiceLlmIntegration)).all()
        runs = {o.run_id for o in outcomes.values()}
        assert {p.dagster_run_id for p in profiles} == runs
        assert {i.dagster_run_id for i in integrations} == runs
        assert {i.settings["voice_weight"] for i in integrations} == {0.8}
        assert all(i.status == "passed" for i in integrations)

    # Both voice checks keep one history per user, each result naming its user.
    for key in (dg.AssetCheckKey(PROFILE, "audio_quality"),
                dg.AssetCheckKey(ALIGNMENT, "integration_valid")):
        history = {rec.partition: rec.event.dagster_event.event_specific_data
                   for rec in instance.event_log_storage.get_asset_check_execution_history(
                       key, limit=10)}
        assert set(history) == {"margaret-ellis", "walter-okafor"}
        for user, result in history.items():
            assert result.passed and result.metadata["user"].value == user
            assert result.description.endswith(f"(user {user})")


def test_unusable_audio_fails_the_blocking_check_with_reasons(sqlite_env_settings, instance,
                                                              tmp_path):
    folder = tmp_path / "export"
    shutil.copytree(PERSONAS_DIR / "walter-okafor", folder)
    for path in (folder / "audio").iterdir():
        sf.write(str(path), np.zeros(16000 * 4, np.float32), 16000)
    import_export(folder, sqlite_env_settings)
    outcome = run_job_for_user(instance, "voice_integration", "walter-okafor")
    assert not outcome.success
    assert outcome.materialized == ["voice_profile"]  # voice_alignment never ran
    assert "no usable recording" in outcome.failed_checks["audio_quality"]
    assert "silent" in outcome.failed_checks["audio_quality"]


def test_training_uses_voice_examples_only_when_asked_and_available(sqlite_env_settings,
                                                                    instance, local_tiny):
    from clone_pipeline.defs.assets_training import trained_adapter
    from clone_pipeline.defs.resources import CloneSettings

    import_export(PERSONAS_DIR / "walter-okafor", sqlite_env_settings)
    assert run_job_for_user(instance, "data_only", "walter-okafor").success
    config = {"ops": {"trained_adapter": {"config": {
        "max_steps": 2, "batch_size": 4, "context_length": 256, "min_free_disk_gb": 0.1,
        "include_voice_integration": True}}}}

    def train():
        return dg.materialize([trained_adapter], partition_key="walter-okafor",
                              instance=instance, resources={"clone": CloneSettings()},
                              run_config=config, raise_on_error=False)

    refused = train()
    assert not refused.success
    failure = next(e for e in refused.all_events if e.is_step_failure)
    assert "no passed voice_alignment" in str(failure.step_failure_data.error.message)

    assert run_job_for_user(instance, "voice_integration", "walter-okafor").success
    trained = train()
    assert trained.success, [e.step_failure_data.error.message for e in trained.all_events
                             if e.is_step_failure]
    logs = [e.user_message for e in instance.all_logs(trained.run_id)]
    assert any("voice-conditioned examples added" in m for m in logs)
