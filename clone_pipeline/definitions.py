"""The one Definitions object Dagster loads (workspace.yaml points here)."""

import dagster as dg

from clone_pipeline.defs.assets_data import collected_training_data, formatted_datasets
from clone_pipeline.defs.assets_maintenance import housekeeping_report
from clone_pipeline.defs.assets_memory import memory_index
from clone_pipeline.defs.assets_serving import deployment
from clone_pipeline.defs.assets_training import model_evaluation, trained_adapter
from clone_pipeline.defs.assets_voice import voice_alignment, voice_profile
from clone_pipeline.defs.executors import executor_from_env
from clone_pipeline.defs.jobs import (
    complete_workflow,
    data_only,
    deploy_evaluated,
    housekeeping,
    train_and_deploy,
    training_presets,
    voice_integration,
)
from clone_pipeline.defs.resources import CloneSettings
from clone_pipeline.defs.schedules import nightly_data_refresh, nightly_housekeeping
from clone_pipeline.defs.sensors import (
    training_run_canceled,
    training_run_failed,
    user_data_changed,
    voice_recordings_changed,
    workflow_progress,
)
from clone_pipeline.services.pairing import check_pairing
from clone_pipeline.settings import load_settings

# A process whose CLONE_HOME and DAGSTER_HOME belong to different pairs fails to load, with
# the command to use, before any sensor can read the wrong data root (the UI shows it as the
# code location's error).
check_pairing(load_settings())

defs = dg.Definitions(
    assets=[collected_training_data, formatted_datasets, memory_index, trained_adapter,
            model_evaluation, voice_profile, voice_alignment, deployment, housekeeping_report],
    jobs=[data_only, complete_workflow, train_and_deploy, deploy_evaluated, voice_integration,
          housekeeping, *training_presets],
    sensors=[user_data_changed, voice_recordings_changed, training_run_failed,
             training_run_canceled, workflow_progress],
    schedules=[nightly_data_refresh, nightly_housekeeping],
    resources={"clone": CloneSettings()},
    executor=executor_from_env(),  # CLONE_EXECUTOR: the default, or k8s (defs/executors.py)
)

# The jobs a person can launch by name (the CLI's --job), in the order the README shows them.
JOB_NAMES = tuple(job.name for job in (data_only, complete_workflow, train_and_deploy,
                                       deploy_evaluated, voice_integration, *training_presets))
