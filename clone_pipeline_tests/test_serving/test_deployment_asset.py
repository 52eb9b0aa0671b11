"""The Dagster `deployment` asset: serves the version model_evaluation promoted, when the run
turns auto_deploy on, with a blocking smoke check through the real engine."""

from __future__ import annotations

import dagster as dg
import pytest

from clone_pipeline.db.models import ModelVersion
from clone_pipeline.db.session import session_scope
from clone_pipeline.defs.partitions import users
from clone_pipeline.launch.launch import run_job_for_user
from clone_pipeline.services.deployments import list_deployments

pytestmark = pytest.mark.slow
AUTO = {"ops": {"deployment": {"config": {"auto_deploy": True}}}}
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@pytest.fixture
def deploy_env(serving_root, engine, monkeypatch):
    settings = serving_root.settings
    for name, value in {"CLONE_HOME": str(settings.home),
                        "CLONE_DATABASE_URL": settings.database_url,
                        "CLONE_MODELS_DIR": str(settings.models_dir),
                        "DAGSTER_HOME": str(settings.dagster_home),
                        "CLONE_ENGINE_URL": engine.client.base_url,
                        "CLONE_ENGINE_KEY": engine.client.headers["Authorization"][7:]}.items():
        monkeypatch.setenv(name, value)
    with dg.instance_for_test() as instance:
        yield settings, instance


def _evaluated(instance, settings, user: str, number: int, promoted: bool) -> None:
    """Record model_evaluation's materialisation for *user*'s version *number*, as the
    evaluation asset does (its figures are tested with it; only the verdict matters here)."""
    instance.add_dynamic_partitions(users.name, [user])
    version_id = _version_id(settings, user, number)
    instance.report_runless_asset_event(dg.AssetMaterialization(
        asset_key="model_evaluation", partition=user,
        metadata={"model_version_id": str(version_id), "model_version": number,
                  "promoted": promoted,
                  "verdict": "auto: beats its base" if promoted else "kept v1: not better"}))


def _version_id(settings, user: str, number: int):
    from clone_pipeline.db import training
    from clone_pipeline.db import users as user_rows

    with session_scope(settings.database_url) as session:
        return training.version_number(session, user_rows.user_id_of(session, user), number).id


def test_promoted_version_is_deployed_and_a_later_one_moves_the_same_deployment(
        deploy_env, canary_adapters, engine):
    settings, instance = deploy_env
    user = "person-03"
    _evaluated(instance, settings, user, 1, promoted=True)
    # Only logger config given: the job's baked auto_deploy must survive it.
    outcome = run_job_for_user(instance, "deploy_evaluated", user, QUIET)
    assert outcome.success, outcome
    [first] = list_deployments(settings, external_id=user)
    assert (first.status, first.model_version) == ("active", 1)

    with session_scope(settings.database_url) as session:
        user_id = session.get(ModelVersion, _version_id(settings, user, 1)).user_id
        session.add(ModelVersion(user_id=user_id, version=2, base_model="local-tiny",
                                 adapter_path=str(canary_adapters[-1]), adapter_sha256="2" * 64,
                                 metrics={}))
    _evaluated(instance, settings, user, 2, promoted=True)
    assert run_job_for_user(instance, "deploy_evaluated", user, AUTO).success
    [moved] = list_deployments(settings, external_id=user)
    assert moved.id == first.id and moved.model_version == 2
    assert moved.adapter_name != first.adapter_name  # a new name, never a reload
    loaded = engine.client.model_names()
    assert moved.adapter_name in loaded and first.adapter_name not in loaded


def test_nothing_is_deployed_without_auto_deploy_or_a_promotion(deploy_env):
    settings, instance = deploy_env
    _evaluated(instance, settings, "person-04", 1, promoted=True)
    off = run_job_for_user(instance, "deploy_evaluated", "person-04",
                           {"ops": {"deployment": {"config": {"auto_deploy": False}}}})
    assert off.success and not list_deployments(settings, external_id="person-04")
    _evaluated(instance, settings, "person-05", 1, promoted=False)
    kept = run_job_for_user(instance, "deploy_evaluated", "person-05", AUTO)
    assert kept.success and not list_deployments(settings, external_id="person-05")
    events = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("deployment"),
                              asset_partitions=["person-05"]), limit=1).records
    assert "not promoted" in events[0].asset_materialization.metadata["reason"].value
