"""The run-status sensors close training rows of failed and cancelled Dagster runs.

Real runs in a real (temporary) instance: one that fails in execution, one cancelled in the
queue; each sensor is evaluated on the run's own status event, as the daemon would.
"""

import dagster as dg

from clone_pipeline.defs.resources import CloneSettings
from clone_pipeline.defs.sensors import training_run_canceled, training_run_failed
from clone_pipeline_tests.test_training.test_run_records import add_training_runs, statuses


@dg.op
def lose_the_worker():
    raise RuntimeError("run worker lost")


@dg.job
def doomed():
    lose_the_worker()


def _resources(settings):
    return {"clone": CloneSettings(home=str(settings.home), database_url=settings.database_url)}


def test_failed_run_marks_its_unfinished_training_rows_failed(settings, instance):
    result = doomed.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    mine, finished, other = add_training_runs(settings, [
        (result.run_id, "running"), (result.run_id, "completed"), ("another-run", "running")])

    context = dg.build_run_status_sensor_context(
        sensor_name=training_run_failed.name, dagster_instance=instance,
        dagster_run=result.dagster_run, dagster_event=result.get_run_failure_event(),
        resources=_resources(settings)).for_run_failure()
    training_run_failed(context)

    after = statuses(settings)
    status, error, finished_at = after[mine]
    assert status == "failed" and finished_at
    assert error.startswith("the Dagster run failed: ") and "doomed" in error
    assert after[finished][0] == "completed" and after[other][0] == "running"


def test_cancelled_run_marks_its_unfinished_training_rows_cancelled(settings, instance):
    run = instance.create_run_for_job(doomed)
    instance.report_run_canceled(run)  # what the queue does for a run cancelled while waiting
    run = instance.get_run_by_id(run.run_id)
    assert run.status == dg.DagsterRunStatus.CANCELED
    [event] = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_CANCELED)
    [pending] = add_training_runs(settings, [(run.run_id, "pending")])

    context = dg.build_run_status_sensor_context(
        sensor_name=training_run_canceled.name, dagster_instance=instance, dagster_run=run,
        dagster_event=event.dagster_event, resources=_resources(settings))
    training_run_canceled(context)

    status, error, _ = statuses(settings)[pending]
    assert status == "cancelled" and "cancelled before training" in error


def test_sensors_are_registered():
    from clone_pipeline.definitions import defs

    assert {"training_run_failed", "training_run_canceled"} <= {
        s.name for s in defs.sensors}
    for sensor in (training_run_failed, training_run_canceled):
        assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
