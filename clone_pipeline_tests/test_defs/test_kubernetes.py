"""The Kubernetes set-up, checked as far as a machine without a cluster or helm allows:
the definitions load with dagster-k8s's step executor, the pod Dagster would build for a
training step requests a GPU on a GPU node (with dagster-k8s's own job builder), CPU steps do
not, and deploy/'s values and manifests agree with dagster.yaml and with each other."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dagster_k8s.job import (
    DagsterK8sJobConfig,
    construct_dagster_k8s_job,
    get_user_defined_k8s_config,
)

from clone_pipeline.defs.executors import LOCAL, executor_from_env

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"


def _step_pod(tags: dict) -> dict:
    """The pod spec dagster-k8s builds for a step with these op tags (as the executor sees
    them: JSON strings), as a plain dict."""
    step_tags = {k: v if isinstance(v, str) else json.dumps(v) for k, v in tags.items()}
    job = construct_dagster_k8s_job(
        DagsterK8sJobConfig(job_image="registry.example.org/clone-pipeline:1",
                            dagster_home="/opt/dagster/dagster_home",
                            instance_config_map="dagster-instance"),
        args=["dagster", "api", "execute_step"], job_name="dagster-step-test",
        user_defined_k8s_config=get_user_defined_k8s_config(step_tags),
        component="step_worker")
    return job.to_dict()["spec"]["template"]["spec"]


def test_training_and_evaluation_steps_get_a_gpu_pod_and_data_steps_do_not():
    from clone_pipeline.defs.assets_data import collected_training_data
    from clone_pipeline.defs.assets_training import model_evaluation, trained_adapter

    for asset in (trained_adapter, model_evaluation):
        pod = _step_pod(asset.op.tags)
        [container] = pod["containers"]
        assert container["resources"]["limits"] == {"nvidia.com/gpu": "1"}
        assert container["resources"]["requests"] == {"nvidia.com/gpu": "1"}
        assert pod["node_selector"] == {"nvidia.com/gpu.present": "true"}
        assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
        assert container["image"] == "registry.example.org/clone-pipeline:1"
    cpu_pod = _step_pod(collected_training_data.op.tags)
    assert not (cpu_pod["containers"][0]["resources"] or {}).get("limits")
    assert cpu_pod["node_selector"] is None


def test_the_definitions_load_with_the_kubernetes_step_executor(tmp_path, models_dir):
    env = {**os.environ, "CLONE_EXECUTOR": "k8s", "CLONE_HOME": str(tmp_path / "home"),
           "DAGSTER_HOME": str(tmp_path / "dagster"), "CLONE_MODELS_DIR": str(models_dir)}
    code = ("from clone_pipeline.definitions import defs; import dagster as dg; "
            "dg.Definitions.validate_loadable(defs); "
            "print(sorted({defs.resolve_job_def(j).executor_def.name for j in "
            "('complete_workflow', 'data_only', 'housekeeping')}))")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['k8s']"


def test_an_unknown_executor_is_refused_with_the_choices(monkeypatch):
    monkeypatch.setenv("CLONE_EXECUTOR", "slurm")
    with pytest.raises(ValueError, match="multiprocess, k8s"):
        executor_from_env()
    monkeypatch.delenv("CLONE_EXECUTOR")
    assert executor_from_env() is LOCAL


def test_helm_values_carry_dagster_yamls_queue_limits_and_the_project_code():
    instance = yaml.safe_load((REPO / "dagster.yaml").read_text())
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    queued = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    runs = instance["concurrency"]["runs"]
    assert queued["maxConcurrentRuns"] == runs["max_concurrent_runs"]
    assert queued["tagConcurrencyLimits"] == runs["tag_concurrency_limits"]
    assert queued["dequeueIntervalSeconds"] == \
        instance["run_coordinator"]["config"]["dequeue_interval_seconds"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    [code] = values["dagster-user-deployments"]["deployments"]
    assert code["dagsterApiGrpcArgs"] == ["-m", "clone_pipeline.definitions", "-a", "defs"]
    assert {"name": "CLONE_EXECUTOR", "value": "k8s"} in code["env"]


def test_the_gateway_points_at_the_gpu_engine_fleet_and_its_publish_folder():
    engine_deployment, engine_service = yaml.safe_load_all((DEPLOY / "k8s" / "engine.yaml")
                                                           .read_text())
    [vllm] = engine_deployment["spec"]["template"]["spec"]["containers"]
    assert vllm["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    assert "--enable-lora" in vllm["args"]
    gateway, _ = yaml.safe_load_all((DEPLOY / "k8s" / "gateway.yaml").read_text())
    [container] = gateway["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    port = engine_service["spec"]["ports"][0]["port"]
    assert env["CLONE_ENGINE_URL"] == f"http://{engine_service['metadata']['name']}:{port}"
    # deploys publish adapters where every engine replica's resolver looks
    engine_env = {e["name"]: e.get("value") for e in vllm["env"]}
    assert engine_env["VLLM_LORA_RESOLVER_CACHE_DIR"] == env["CLONE_ENGINE_LORA_DIR"]
    assert env["CLONE_ENGINE_LORA_DIR"].startswith("/data/clone/")  # the shared volume
