"""CLONE_EXECUTOR=celery with real Celery workers over the machine's Redis: a user's data
and training stages run as Celery tasks, the training step on the `gpu` queue's worker and
the data steps on the default queue's, and the collected dataset is the one a run without
Celery makes from the same export. Killing the GPU worker's process mid-step fails the run
cleanly and a retry resumes from the checkpoint."""

import json
import os
import signal
import subprocess
from pathlib import Path

import dagster as dg
import psutil
import pytest
import redis
import yaml

from clone_pipeline.demo import PERSONAS_DIR
from clone_pipeline.launch.dagster_dev import stop_group
from clone_pipeline.launch.instance import default_template, initialise
from clone_pipeline.launch.launch import run_job_for_user
from clone_pipeline.launch.names import DATA_ONLY
from clone_pipeline.services.ingest import import_export
from clone_pipeline.settings import Settings, load_settings
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


def _materialize(env: dict[str, str], select: str, train: dict) -> list[str]:
    return [str(BIN / "dagster"), "asset", "materialize", "-m", "clone_pipeline.definitions",
            "--select", select, "--partition", USER,
            "--config-json", json.dumps({"ops": {"trained_adapter": {"config": train}}})]


def _training_runs(env: dict[str, str]) -> list:
    """Every training_runs row, oldest first, with its metrics' steps."""
    from clone_pipeline.db.models import TrainingMetric, TrainingRun
    from clone_pipeline.db.session import session_scope

    with session_scope(load_settings(env).database_url) as session:
        return [(run.status, run.error, run.checkpoint_path,
                 [m.step for m in session.query(TrainingMetric).filter_by(
                     training_run_id=run.id).order_by(TrainingMetric.step)])
                for run in session.query(TrainingRun).order_by(TrainingRun.started_at)]


def _dataset_sha(settings: Settings) -> str:
    from clone_pipeline.db.models import TrainingDataset
    from clone_pipeline.db.session import session_scope

    with session_scope(settings.database_url) as session:
        return session.query(TrainingDataset).one().sha256


@pytest.mark.slow
def test_celery_workers_run_the_steps_and_the_gpu_queue_worker_trains(tmp_path, models_dir,
                                                                      local_tiny, monkeypatch):
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
        done = subprocess.run(
            _materialize(env, "collected_training_data,formatted_datasets,trained_adapter",
                         TRAIN), cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
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

        _kill_the_gpu_worker_mid_step_then_retry(env, monkeypatch)
    finally:
        for process, _ in workers.values():
            stop_group(process)
        broker.flushdb()

    # The same export collected without Celery (in this process: the comparison is of the
    # data, not of the executors) makes the same dataset.
    roots = {"CLONE_HOME": str(tmp_path / "default" / "home"),
             "DAGSTER_HOME": str(tmp_path / "default" / "dagster"),
             "CLONE_MODELS_DIR": str(models_dir)}
    for name, value in roots.items():  # what the definitions' resources read
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CLONE_DATABASE_URL", raising=False)
    default = load_settings(roots)
    initialise(default, default_template())
    import_export(PERSONAS_DIR / USER, default)
    with dg.DagsterInstance.from_config(str(default.dagster_home)) as instance:
        collected = run_job_for_user(instance, DATA_ONLY, USER,
                                     assets=["collected_training_data"])
    assert collected.success, collected
    assert _dataset_sha(default) == _dataset_sha(load_settings(env))


def _kill_the_gpu_worker_mid_step_then_retry(env: dict[str, str], monkeypatch) -> None:
    """SIGKILL the GPU worker's process running the training step once it has trained a
    step: Celery reports the lost worker, the run fails, the orphaned trainer is stopped (it
    checkpoints), the failure sensor says why in training_runs, and a retry resumes."""
    from clone_pipeline.defs.resources import CloneSettings
    from clone_pipeline.defs.sensors import training_run_failed

    train = {**TRAIN, "max_steps": 20}  # another config: a training run of its own
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        earlier = {r.run_id for r in instance.get_runs()}
        materialize = subprocess.Popen(_materialize(env, "trained_adapter", train), cwd=REPO,
                                       env=env, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)

        def step_pid():
            runs = [r for r in instance.get_runs(limit=1) if r.run_id not in earlier]
            starts = runs and instance.all_logs(runs[0].run_id,
                                                of_type=dg.DagsterEventType.STEP_START)
            return starts and starts[0].dagster_event.pid

        pid = wait_for(step_pid, 300, "the training step to start on the gpu worker")
        wait_for(lambda: len(_training_runs(env)) == 2 and _training_runs(env)[1][3], 300,
                 "the new training run to report a step")
        [trainer] = [c for c in psutil.Process(pid).children()
                     if "pipes_main" in " ".join(c.cmdline())]
        os.kill(pid, signal.SIGKILL)
        assert materialize.wait(timeout=300) != 0
        [run] = instance.get_runs(limit=1)
        assert run.status == dg.DagsterRunStatus.FAILURE
        [failure] = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
        # the orphaned trainer got SIGTERM when its parent died: it checkpoints and exits
        wait_for(lambda: not trainer.is_running() or trainer.status() == psutil.STATUS_ZOMBIE,
                 60, "the orphaned trainer to stop")
        status, error, checkpoint, steps = _training_runs(env)[1]
        assert status == "running"  # nobody has told the domain tables yet
        stopped_at = json.loads((Path(checkpoint) / "progress.json").read_text())["step"]
        assert 1 <= stopped_at < train["max_steps"]

        # What the daemon's run-failure sensor does with this failure, evaluated on it.
        for name, value in (("CLONE_HOME", env["CLONE_HOME"]),
                            ("DAGSTER_HOME", env["DAGSTER_HOME"]),
                            ("CLONE_MODELS_DIR", env["CLONE_MODELS_DIR"])):
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("CLONE_DATABASE_URL", raising=False)
        training_run_failed(dg.build_run_status_sensor_context(
            sensor_name="training_run_failed", dagster_instance=instance, dagster_run=run,
            dagster_event=failure.dagster_event).for_run_failure(), clone=CloneSettings())
    status, error, _, _ = _training_runs(env)[1]
    assert status == "failed" and error.startswith("the Dagster run failed")
    assert "[trained_adapter]: billiard.exceptions.WorkerLostError: Worker exited " \
        "prematurely: signal 9 (SIGKILL)" in error

    retry = subprocess.run(_materialize(env, "trained_adapter", train), cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=900)
    assert retry.returncode == 0, retry.stdout[-3000:] + retry.stderr[-3000:]
    status, _, _, steps = _training_runs(env)[2]
    assert status == "completed"
    assert steps[0] == stopped_at + 1 and steps[-1] == train["max_steps"]  # resumed
