"""CLONE_EXECUTOR=celery with real Celery workers over the machine's Redis: a user's data
and training stages run as Celery tasks, the training step on the `gpu` queue's worker and
the data steps on the default queue's, and the collected dataset is the one the default
executor makes from the same export."""

import json
import os
import subprocess
from pathlib import Path

import dagster as dg
import psutil
import pytest
import redis
import yaml

from clone_pipeline.demo import PERSONAS_DIR
from clone_pipeline.orchestration.serve import stop_group
from clone_pipeline_tests.test_defs.dagster_dev import BIN, REPO, wait_for

USER = "margaret-ellis"
BROKER = "redis://127.0.0.1:6379/7"  # a database of its own, flushed before and after
TRAIN = {"max_steps": 2, "batch_size": 4, "context_length": 256, "save_steps": 100,
         "eval_steps": 100, "min_free_disk_gb": 0.1}


def _root(tmp_path: Path, name: str, models_dir: Path, **extra) -> dict[str, str]:
    """A fresh data root with USER imported; returns its environment."""
    env = {**os.environ, "CLONE_HOME": str(tmp_path / name / "home"),
           "DAGSTER_HOME": str(tmp_path / name / "dagster"), "CLONE_MODELS_DIR": str(models_dir),
           **extra}
    for var in ("CLONE_DATABASE_URL", "DAGSTER_POSTGRES_URL"):
        env.pop(var, None)
    for args in (["init"], ["import", str(PERSONAS_DIR / USER)]):
        done = subprocess.run([str(BIN / "clone-pipeline"), *args], env=env,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    return env


def _dataset_sha(env: dict[str, str]) -> str:
    from clone_pipeline.db.models import TrainingDataset
    from clone_pipeline.db.session import session_scope
    from clone_pipeline.settings import load_settings

    with session_scope(load_settings(env).database_url) as session:
        return session.query(TrainingDataset).one().sha256


@pytest.mark.slow
def test_celery_workers_run_the_steps_and_the_gpu_queue_worker_trains(tmp_path, models_dir,
                                                                      local_tiny):
    try:
        broker = redis.Redis.from_url(BROKER)
        broker.flushdb()
    except redis.ConnectionError:
        pytest.fail("Redis at 127.0.0.1:6379 is not running (.ci/run starts it)")
    env = _root(tmp_path, "celery", models_dir, CLONE_EXECUTOR="celery",
                CLONE_CELERY_BROKER=BROKER,  # dagster-celery runs `celery` from PATH
                PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    config = tmp_path / "worker.yaml"
    config.write_text(yaml.safe_dump({"execution": {"config": {
        "broker": BROKER, "backend": BROKER,
        "config_source": {"worker_prefetch_multiplier": 1, "task_acks_late": True}}}}))
    workers = {}
    try:
        for queue, extra in (("dagster", []), ("gpu", ["--", "--concurrency", "1"])):
            log = (tmp_path / f"worker-{queue}.log").open("w")
            workers[queue] = (subprocess.Popen(
                [str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app",
                 "-y", str(config), "-q", queue, "-n", f"clone-{queue}", *extra],
                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True), tmp_path / f"worker-{queue}.log")
        for queue, (process, log_path) in workers.items():
            def ready(process=process, log_path=log_path, queue=queue):
                assert process.poll() is None, f"the {queue} worker exited: " + \
                    log_path.read_text()[-2000:]
                return " ready." in log_path.read_text()

            wait_for(ready, 180, f"the {queue} worker to be ready")

        with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
            instance.add_dynamic_partitions("users", [USER])  # the sensor's job, stopped here
        run_config = {"ops": {"trained_adapter": {"config": TRAIN}}}
        done = subprocess.run(
            [str(BIN / "dagster"), "asset", "materialize", "-m", "clone_pipeline.definitions",
             "--select", "collected_training_data,formatted_datasets,trained_adapter",
             "--partition", USER, "--config-json", json.dumps(run_config)],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

        # Where each step ran: the pid Dagster recorded on its STEP_START, inside which
        # worker's process tree.
        trees = {queue: {process.pid, *(c.pid for c in psutil.Process(process.pid)
                                         .children(recursive=True))}
                 for queue, (process, _) in workers.items()}
        with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
            [run] = instance.get_runs()
            assert run.status == dg.DagsterRunStatus.SUCCESS
            ran_on = {}
            for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_START):
                ran_on[entry.step_key] = next(q for q, pids in trees.items()
                                              if entry.dagster_event.pid in pids)
            submitted = [e.message for e in instance.all_logs(
                run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
                if "Submitting celery task" in (e.message or "")]
        assert ran_on == {"collected_training_data": "dagster",
                          "formatted_datasets": "dagster", "trained_adapter": "gpu"}
        assert any('"trained_adapter"' in m and "gpu" in m for m in submitted), submitted
    finally:
        for process, _ in workers.values():
            stop_group(process)
        broker.flushdb()

    # The same export through the default executor makes the same collected dataset.
    default = _root(tmp_path, "default", models_dir)
    done = subprocess.run([str(BIN / "clone-pipeline"), "run", USER, "--job", "data_only"],
                          env=default, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _dataset_sha(default) == _dataset_sha(env)
