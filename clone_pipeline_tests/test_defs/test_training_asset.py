"""trained_adapter and model_evaluation through a real Dagster run: a child process over
Pipes, metrics rows, live observations, a model version, a loss curve and the evaluation."""

import hashlib
from pathlib import Path

import dagster as dg
from click.testing import CliRunner
from sqlalchemy import select

from clone_pipeline.cli import main
from clone_pipeline.db.models import ModelVersion, TrainingMetric, TrainingRun
from clone_pipeline.db.session import session_scope
from clone_pipeline.defs.assets_training import model_evaluation, trained_adapter
from clone_pipeline.defs.metadata import UI_INLINE_MARKDOWN
from clone_pipeline.defs.resources import CloneSettings
from clone_pipeline.demo import PERSONAS_DIR
from clone_pipeline.launch.launch import run_job_for_user
from clone_pipeline.services.fidelity import store_fact_sheet
from clone_pipeline.services.ingest import import_export

TRAIN = {"max_steps": 6, "batch_size": 4, "context_length": 512, "learning_rate": 3e-3,
         "eval_steps": 3, "min_free_disk_gb": 0.1}


def test_complete_workflow_trains_and_evaluates_an_adapter(env_settings, instance,
                                                           import_persona):
    import_persona("margaret-ellis")  # another family: must not be the evaluation's control
    assert run_job_for_user(instance, "data_only", "margaret-ellis").success
    import_persona("walter-okafor")
    store_fact_sheet(env_settings, "walter-okafor",
                     PERSONAS_DIR / "walter-okafor" / "facts.json")
    outcome = run_job_for_user(instance, "complete_workflow", "walter-okafor",
                               {"ops": {"trained_adapter": {"config": TRAIN}}})
    assert outcome.success, outcome.error
    assert {"memory_index", "trained_adapter", "model_evaluation"} <= \
        set(outcome.materialized)
    assert not outcome.failed_checks  # beats_base passed

    with session_scope(env_settings.database_url) as s:
        run = s.scalars(select(TrainingRun)).one()
        assert run.status == "completed" and run.dagster_run_id == outcome.run_id
        assert run.hardware["profile"]["name"] == "cpu"
        steps = [m.step for m in s.scalars(select(TrainingMetric)
                                           .order_by(TrainingMetric.step))]
        assert steps == [1, 2, 3, 4, 5, 6]
        metrics = s.scalars(select(TrainingMetric)).all()
        assert all(m.gpu_utilization is None and m.vram_used_mb is None for m in metrics)
        assert sum(m.eval_loss is not None for m in metrics) == 2
        version = s.scalars(select(ModelVersion)).one()
        adapter = Path(version.adapter_path) / "adapter_model.safetensors"
        assert version.adapter_sha256 == hashlib.sha256(adapter.read_bytes()).hexdigest()
        evaluation = version.metrics["evaluation"]
        assert version.status == "evaluated" and evaluation["beats_base"]
        assert evaluation["adapter_perplexity"] < evaluation["base_perplexity"]
        assert evaluation["control_similarity"] is not None and evaluation["questions"] > 0
        assert evaluation["control"] == "reference"  # not Margaret's answers
        assert -1 <= evaluation["persona_similarity"] <= 1
        assert version.promoted_at is not None  # the first version that beats its base
        assert version.promotion_note.startswith("auto: promoted v1: first version")
        # fidelity on his fact sheet: four configurations; with memories, questions about
        # what he never told get the gateway's abstention without reaching the model
        fidelity = evaluation["fidelity"]
        assert set(fidelity["scores"]) == {"base", "base+memories", "adapter",
                                           "adapter+memories"}  # (PostgreSQL reorders keys)
        assert fidelity["told"] == 15 and fidelity["never_told"] == 10
        assert fidelity["scores"]["adapter+memories"]["abstained"] >= 4
        assert fidelity["scores"]["adapter+memories"]["honest_abstention"] >= 0.4

    observations = instance.fetch_observations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("trained_adapter"),
                              asset_partitions=["walter-okafor"]), limit=50).records
    assert sorted(o.asset_observation.metadata["step"].value for o in observations) == \
        [1, 2, 3, 4, 5, 6]
    progress = CliRunner().invoke(main, ["progress", outcome.run_id, "--no-follow",
                                         "--detailed"])
    assert progress.exit_code == 0, progress.output
    assert "walter-okafor (completed)" in progress.output and "step 6" in progress.output
    assert "Loss progression" in progress.output

    [materialization] = instance.fetch_materializations(
        dg.AssetKey("trained_adapter"), limit=1).records
    metadata = materialization.asset_materialization.metadata
    # Short enough for the UI to show inline (not behind "[Show Markdown]"), the PNG beside
    assert metadata["loss_curve"].value.startswith("![chart](data:image/svg+xml,")
    assert len(metadata["loss_curve"].value) < UI_INLINE_MARKDOWN
    assert Path(metadata["loss_curve_path"].value).read_bytes().startswith(b"\x89PNG")
    assert metadata["model_version"].value == 1 and metadata["steps"].value == 6
    [judged] = instance.fetch_materializations(dg.AssetKey("model_evaluation"),
                                               limit=1).records
    verdict = judged.asset_materialization.metadata
    assert verdict["promoted"].value is True
    [check] = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey("model_evaluation"), "beats_base"), limit=5)
    assert check.partition == "walter-okafor"  # one history per user
    assert check.event.dagster_event.event_specific_data.metadata["user"].value == \
        "walter-okafor"
    assert verdict["verdict"].value.startswith("promoted v1: first version that beats its base")
    assert "perplexity and style distance: lower is better" in verdict["direction"].value
    assert "| adapter+memories |" in verdict["fidelity"].value


def test_preflight_refuses_a_user_who_is_not_ready(env_settings, instance, import_persona):
    import_persona("rosa-delgado")
    run_job_for_user(instance, "data_only", "rosa-delgado")
    outcome = run_job_for_user(instance, "train_cpu_demo", "rosa-delgado")
    assert not outcome.success
    assert "not ready for training" in outcome.error
    with session_scope(env_settings.database_url) as s:
        assert s.scalars(select(TrainingRun)).all() == []


def test_model_evaluation_judges_the_version_its_upstream_produced(sqlite_env_settings,
                                                                  instance):
    """A newer version recorded meanwhile (another run of the same user) is not the one this
    evaluation judges: it follows the trained_adapter materialisation's model version id."""
    import_export(PERSONAS_DIR / "walter-okafor", sqlite_env_settings)
    trained = run_job_for_user(instance, "complete_workflow", "walter-okafor",
                               {"ops": {"trained_adapter": {"config": TRAIN}}})
    assert trained.success, trained.error
    with session_scope(sqlite_env_settings.database_url) as s:
        first = s.scalars(select(ModelVersion)).one()
        s.add(ModelVersion(user_id=first.user_id, training_run_id=first.training_run_id,
                           version=2, base_model=first.base_model,
                           adapter_path=first.adapter_path + "-elsewhere",
                           adapter_sha256="0" * 64, metrics={}))
    result = dg.materialize([model_evaluation], partition_key="walter-okafor",
                            instance=instance, resources={"clone": CloneSettings()})
    assert result.success
    [event] = result.get_asset_materialization_events()
    assert event.materialization.metadata["model_version"].value == 1
    with session_scope(sqlite_env_settings.database_url) as s:
        by_version = {v.version: v for v in s.scalars(select(ModelVersion))}
        assert "evaluation" in by_version[1].metrics
        assert "evaluation" not in by_version[2].metrics and by_version[2].status == "trained"


def test_trained_adapter_trains_on_two_processes_when_asked(sqlite_env_settings, instance,
                                                             monkeypatch):
    """CLONE_TRAIN_PROCESSES=2: the asset starts the Pipes child under accelerate launch; the
    main process reports every step once, the run records how many processes trained."""
    monkeypatch.setenv("CLONE_TRAIN_PROCESSES", "2")
    import_export(PERSONAS_DIR / "walter-okafor", sqlite_env_settings)
    assert run_job_for_user(instance, "data_only", "walter-okafor").success
    result = dg.materialize([trained_adapter], partition_key="walter-okafor",
                            instance=instance, resources={"clone": CloneSettings()},
                            run_config={"ops": {"trained_adapter": {"config": TRAIN}}})
    assert result.success
    [event] = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert metadata["training_processes"].value == 2 and metadata["steps"].value == 6
    with session_scope(sqlite_env_settings.database_url) as s:
        run = s.scalars(select(TrainingRun)).one()
        assert run.status == "completed" and run.hardware["processes"] == 2
        assert [m.step for m in s.scalars(select(TrainingMetric).order_by(
            TrainingMetric.step))] == [1, 2, 3, 4, 5, 6]
