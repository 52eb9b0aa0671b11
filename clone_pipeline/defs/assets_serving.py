"""deployment: serve the version that passed evaluation, checked by a real generation."""

import dagster as dg

from clone_pipeline.defs.assets_training import model_evaluation, upstream_materialization
from clone_pipeline.defs.partitions import per_user_check, users
from clone_pipeline.defs.resources import CloneSettings
from clone_pipeline.defs.training_config import DeploymentConfig
from clone_pipeline.services import deployments
from clone_pipeline.services.engine import engine_for


@dg.asset(
    partitions_def=users,
    group_name="serving",
    kinds={"vllm"},
    deps=[model_evaluation],
    check_specs=[per_user_check(
        "smoke", asset="deployment", blocking=True,
        description="A real generation through the engine with the deployed adapter ends at "
                    "the chat template's end token and echoes no role tokens.")],
    description="The user's evaluated model version served by the engine (vLLM, one base "
                "model, every user's adapter): deployed when model_evaluation promoted it "
                "and auto_deploy is on; a user's existing deployment moves to the new "
                "version under a new adapter name.",
)
def deployment(context: dg.AssetExecutionContext, config: DeploymentConfig,
               clone: CloneSettings) -> dg.MaterializeResult:
    settings = clone.settings()
    user = context.partition_key
    found = upstream_materialization(context, model_evaluation.key)
    if found is None or "model_version_id" not in found.metadata:
        raise dg.Failure(f"{user}: no model_evaluation to deploy from; materialise "
                         f"model_evaluation first")
    evaluated = found.metadata
    version = int(evaluated["model_version"].value)
    skip = (None if config.auto_deploy and evaluated["promoted"].value else
            "auto_deploy is off for this run" if not config.auto_deploy else
            f"v{version} was not promoted: {evaluated['verdict'].value}")
    if skip:
        context.log.info(f"{user}: nothing deployed ({skip})")
        return dg.MaterializeResult(
            metadata={"deployed": False, "reason": skip, "model_version": version},
            check_results=[dg.AssetCheckResult(
                check_name="smoke", passed=True, description=f"nothing deployed: {skip}")])
    existing = [d for d in deployments.list_deployments(settings, external_id=user)
                if d.status == "active"]
    base_model = deployments.version_base_model(settings, user, version)
    try:
        with engine_for(settings, base_model) as engine:
            if existing:
                dep = deployments.update_deployment(settings, engine, existing[-1].id,
                                                    version=version)
            else:
                dep = deployments.deploy_model(
                    settings, engine, user, version=version,
                    name=config.deployment_name or None, inference_type=config.inference_type,
                    optimizations={"caching": config.caching}, dagster_run_id=context.run.run_id)
    except deployments.DeploymentError as exc:
        return dg.MaterializeResult(
            metadata={"deployed": False, "reason": str(exc), "model_version": version},
            check_results=[dg.AssetCheckResult(
                check_name="smoke", passed=False, severity=dg.AssetCheckSeverity.ERROR,
                description=str(exc)[:1000])])
    context.log.info(f"{user}: v{version} serving as {dep.name} ({dep.id})")
    return dg.MaterializeResult(
        metadata={"deployed": True, "deployment_id": str(dep.id), "name": dep.name,
                  "model_version": version, "adapter_name": dep.adapter_name,
                  "engine_device": dep.optimizations.get("device"),
                  "updated_existing": bool(existing)},
        check_results=[dg.AssetCheckResult(
            check_name="smoke", passed=True,
            description=f"v{version} generated through the engine and stopped at the end "
                        f"token")])
