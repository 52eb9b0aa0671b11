"""What the suite's shared `dagster dev` serves: the project's definitions, plus two test-only
jobs whose single step holds its run open for as long as its config says.

The queue proofs need runs that occupy the queue, not their work: a run is queued, ordered,
held per user, paused and ended by the same machinery whatever its step does (the run
queue's tag limits and its pool check at run granularity, the tags the launch layer sets,
run monitoring), and a held run takes seconds where a data run or a training takes a
minute. Both jobs are partitioned by the real users partitions (Dagster tags each run with
its user); `gpu_slot_holder`'s step takes its pool from the real training asset, so it is
queued exactly as training is.
"""

import time

import dagster as dg

from clone_pipeline.definitions import defs as project_defs
from clone_pipeline.defs.assets_training import trained_adapter
from clone_pipeline.defs.partitions import users

GPU_HOLD_JOB = "gpu_slot_holder"
RUN_HOLD_JOB = "run_holder"
SECONDS = {"seconds": dg.Field(float, default_value=1.0)}


def _hold(context: dg.OpExecutionContext) -> None:
    """Hold for `seconds`, in short sleeps: a terminate ends it at once."""
    deadline = time.monotonic() + context.op_config["seconds"]
    while time.monotonic() < deadline:
        time.sleep(0.1)


@dg.op(pool=trained_adapter.op.pool, config_schema=SECONDS)
def hold_gpu_slot(context: dg.OpExecutionContext) -> None:
    _hold(context)


@dg.op(config_schema=SECONDS)
def hold_run(context: dg.OpExecutionContext) -> None:
    _hold(context)


# In process: a one-step run needs no step process (the queue, not the executor, is tested).
@dg.job(name=GPU_HOLD_JOB, partitions_def=users, executor_def=dg.in_process_executor)
def gpu_slot_holder():
    hold_gpu_slot()


@dg.job(name=RUN_HOLD_JOB, partitions_def=users, executor_def=dg.in_process_executor)
def run_holder():
    hold_run()


def hold_config(job: str, seconds: float) -> dict:
    """Run config for either job: hold for *seconds*."""
    op = {GPU_HOLD_JOB: hold_gpu_slot, RUN_HOLD_JOB: hold_run}[job]
    return {"ops": {op.name: {"config": {"seconds": seconds}}}}


defs = dg.Definitions.merge(project_defs,
                            dg.Definitions(jobs=[gpu_slot_holder, run_holder]))
