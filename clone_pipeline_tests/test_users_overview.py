"""`clone-pipeline users`: one row per user saying where they stand, from data to deployment."""

import json

from click.testing import CliRunner

from clone_pipeline.cli import main
from clone_pipeline.data.collect import CollectOptions
from clone_pipeline.data.format_dataset import FormatOptions
from clone_pipeline.db import training, users, voice
from clone_pipeline.db.models import TrainingRun
from clone_pipeline.db.session import session_scope
from clone_pipeline.db.statuses import VoiceProfileStatus
from clone_pipeline.demo import PERSONAS_DIR
from clone_pipeline.services.datasets import collect_user_data, format_user_data
from clone_pipeline.services.ingest import import_export
from clone_pipeline.services.users import overview


def _record_trained_and_evaluated_version(settings, external_id: str) -> None:
    """What trained_adapter and model_evaluation record (they are tested on their own)."""
    with session_scope(settings.database_url) as s:
        user_id = users.user_id_of(s, external_id)
        run = TrainingRun(user_id=user_id, status="completed", base_model="local-tiny")
        s.add(run)
        s.flush()
        version = training.add_model_version(s, run.id, None, "adapters/v1", "0" * 64, {})
        training.store_evaluation(s, version.id, {"adapter_perplexity": 297.84,
                                                  "base_perplexity": 518.4, "heldout": "h"})
        training.promote(s, version.id, "first version that beats its base")
        worse = training.add_model_version(s, run.id, None, "adapters/v2", "1" * 64, {})
        training.store_evaluation(s, worse.id, {"adapter_perplexity": 350.0,
                                                "base_perplexity": 518.4, "heldout": "h"})
        training.note_kept(s, worse.id, "kept v1")
        voice.add_profile(s, user_id=user_id, status=VoiceProfileStatus.READY, profile={})


def test_users_shows_each_user_from_data_to_deployment(sqlite_settings):
    for name in ("walter-okafor", "rosa-delgado", "margaret-ellis"):
        import_export(PERSONAS_DIR / name, sqlite_settings)
    for name in ("walter-okafor", "rosa-delgado"):
        collect_user_data(sqlite_settings, name, CollectOptions())
    format_user_data(sqlite_settings, "walter-okafor", FormatOptions(),
                     tokenizer_name="local-tiny", template_style="legacy_preservation")
    _record_trained_and_evaluated_version(sqlite_settings, "walter-okafor")

    rows = {r["external_id"]: r for r in overview(sqlite_settings)}
    walter, rosa, margaret = rows["walter-okafor"], rows["rosa-delgado"], rows["margaret-ellis"]
    assert walter["ready"] is True and walter["formatted"]["dataset_version"] == 1
    assert walter["formatted"]["formats"] == 7
    # The current version is shown, not the newest (a worse v2 was kept out).
    assert walter["model"]["version"] == 1 and walter["model"]["status"] == "evaluated"
    assert walter["model"]["current"] and walter["model"]["latest_version"] == 2
    assert walter["model"]["adapter_perplexity"] == 297.84
    assert walter["voice_profile"]["created_at"] is not None
    assert walter["deployment"] is None  # nothing deployed yet
    assert rosa["ready"] is False and rosa["formatted"] is None and rosa["model"] is None
    assert rosa["voice_profile"] is None
    assert margaret["ready"] is None  # imported, never collected

    env = {"CLONE_HOME": str(sqlite_settings.home),
           "CLONE_MODELS_DIR": str(sqlite_settings.models_dir),
           "DAGSTER_HOME": str(sqlite_settings.dagster_home),
           "CLONE_DATABASE_URL": sqlite_settings.database_url}
    shown = CliRunner().invoke(main, ["users"], env=env)
    assert shown.exit_code == 0, shown.output
    lines = {line.split()[1]: line for line in shown.output.splitlines()
             if line.startswith("│ ") and line.split()[1] in rows}
    assert "ready (v1)" in lines["walter-okafor"]
    assert "v1: 83/7, 7" in lines["walter-okafor"]
    assert "v1: 297.8 / 518.4" in lines["walter-okafor"]
    assert "(v2 not current)" in shown.output
    assert "yes, 20" in lines["walter-okafor"] and "│ none" in lines["walter-okafor"]
    assert "not ready yet:" in lines["rosa-delgado"]
    assert "not collected" in lines["margaret-ellis"]
    listed = {r["external_id"]: r for r in
              json.loads(CliRunner().invoke(main, ["users", "--json"], env=env).output)}
    assert listed["walter-okafor"]["model"]["adapter_perplexity"] == 297.84
