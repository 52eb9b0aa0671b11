"""The names the Dagster definitions are built under and the launcher addresses them by.

Defined here, once: ``defs`` builds the jobs, the partition set and the pool with these names,
and everything that launches or reads runs uses the same constants.
"""

# The module Dagster loads as the code location (workspace.yaml and pyproject name it too);
# in-process launches load it by name, as Dagster's code server does.
CODE_LOCATION = "clone_pipeline.definitions"

USERS_PARTITIONS = "users"  # one partition per user, keyed by the export's external_id
GPU_POOL = "gpu"  # the concurrency pool a training or evaluation step holds a slot of

# Jobs launched by name (defs.jobs defines them).
DATA_ONLY = "data_only"
COMPLETE_WORKFLOW = "complete_workflow"
DEPLOY_EVALUATED = "deploy_evaluated"
VOICE_INTEGRATION = "voice_integration"

# Run tags.
PARTITION_TAG = "dagster/partition"  # Dagster sets it on every partitioned run
MAX_RUNTIME_TAG = "dagster/max_runtime"  # the daemon fails a run that runs longer
WORKFLOW_TAG = "clone/workflow"  # the training_workflows row a run belongs to
