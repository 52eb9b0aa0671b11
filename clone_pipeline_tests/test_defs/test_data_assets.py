"""The data assets through real Dagster runs, with two users (one ready, one not)."""

import dagster as dg
from sqlalchemy import select

from clone_pipeline.db.models import FormattedTrainingData, TrainingDataset
from clone_pipeline.db.session import session_scope
from clone_pipeline.definitions import defs
from clone_pipeline.defs.partitions import users
from clone_pipeline.launch.launch import run_job_for_user

COLLECTED = dg.AssetKey("collected_training_data")
FORMATTED = dg.AssetKey("formatted_datasets")


def test_definitions_load_and_everything_is_partitioned_per_user():
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    for key in (COLLECTED, FORMATTED):
        assert graph.get(key).partitions_def.name == "users"
    checks = {k.name: graph.get_check_spec(k) for k in graph.asset_check_keys}
    assert checks["schema"].blocking
    # Readiness gates by withholding the output (downstream skipped, not failed), and both
    # checks keep their results per user.
    assert not checks["readiness"].blocking
    assert checks["readiness"].partitions_def == checks["schema"].partitions_def == users


def test_two_users_ready_one_blocked(env_settings, instance, import_persona):
    import_persona("margaret-ellis")
    import_persona("rosa-delgado")
    ready = run_job_for_user(instance, "data_only", "margaret-ellis")
    blocked = run_job_for_user(instance, "data_only", "rosa-delgado")

    assert ready.success and sorted(ready.materialized) == [
        "collected_training_data", "formatted_datasets", "memory_index"]
    assert not ready.failed_checks
    assert not blocked.success
    assert blocked.materialized == ["collected_training_data"]  # downstream never ran
    assert blocked.failed_checks == {"readiness": "not ready yet: 3 question categories "
                                                  "covered; at least 5 needed (user rosa-delgado)"}
    assert set(instance.get_dynamic_partitions("users")) == {"margaret-ellis", "rosa-delgado"}

    # Materialisations are per partition, with the metadata the UI shows.
    def materializations(key, user):
        return instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=[user]), limit=5).records

    [collected] = materializations(COLLECTED, "margaret-ellis")
    metadata = collected.asset_materialization.metadata
    assert metadata["ready"].value is True and metadata["total_examples"].value == 90
    assert materializations(FORMATTED, "margaret-ellis")
    assert materializations(FORMATTED, "rosa-delgado") == []

    with session_scope(env_settings.database_url) as s:
        datasets = {d.dagster_run_id: d for d in s.scalars(select(TrainingDataset))}
        assert set(datasets) == {ready.run_id, blocked.run_id}
        assert datasets[ready.run_id].ready and not datasets[blocked.run_id].ready
        assert (env_settings.home / datasets[ready.run_id].path).is_file()
        formatted = s.scalars(select(FormattedTrainingData)).all()
        assert {f.format for f in formatted} == {"conversational", "instruction", "chat",
                                                 "alpaca", "llama", "openai", "sharegpt"}
        assert {f.dagster_run_id for f in formatted} == {ready.run_id}
        assert all(f.train_count > f.eval_count > 0 for f in formatted)


def test_run_config_reaches_the_core(env_settings, instance, import_persona):
    import_persona("walter-okafor")
    config = {"ops": {
        "collected_training_data": {"config": {"include_milestones": False,
                                               "redact_names": ["Grace"]}},
        "formatted_datasets": {"config": {"formats": ["openai", "alpaca"],
                                          "template_style": "casual", "max_length": 256}}}}
    outcome = run_job_for_user(instance, "data_only", "walter-okafor", config)
    assert outcome.success, outcome.error
    with session_scope(env_settings.database_url) as s:
        dataset = s.scalars(select(TrainingDataset)).one()
        assert "milestone_messages" not in dataset.sources
        assert dataset.config["redact_names"] == ["Grace"]
        rows = s.scalars(select(FormattedTrainingData)).all()
        assert sorted(r.format for r in rows) == ["alpaca", "openai"]
        assert {r.template_style for r in rows} == {"casual"}
        assert all(r.token_stats["max_tokens"] <= 256 for r in rows)


def test_recollecting_unchanged_data_keeps_the_version(env_settings, instance,
                                                       import_persona):
    import_persona("margaret-ellis")
    first = run_job_for_user(instance, "data_only", "margaret-ellis")
    second = run_job_for_user(instance, "data_only", "margaret-ellis")
    assert first.success and second.success
    with session_scope(env_settings.database_url) as s:
        versions = [d.version for d in s.scalars(select(TrainingDataset))]
    assert versions == [1, 1]


def test_user_with_no_material_is_stopped_with_a_reason(env_settings, instance, tmp_path):
    import json

    from clone_pipeline.services.ingest import import_export

    export = tmp_path / "export.json"
    export.write_text(json.dumps({"format": "clone-pipeline/user-export", "version": 1,
                                  "user": {"external_id": "quiet-one",
                                           "display_name": "Quiet One"}}))
    import_export(export, env_settings)
    outcome = run_job_for_user(instance, "data_only", "quiet-one")
    assert not outcome.success and outcome.materialized == ["collected_training_data"]
    assert outcome.failed_checks["readiness"].startswith("not ready yet: no material imported")
