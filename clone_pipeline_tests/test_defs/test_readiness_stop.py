"""A user who is not ready yet, as the Dagster UI shows it: the readiness check fails on
their partition of collected_training_data with the reason, formatting is skipped (not
failed, so not red), and nothing in the run reads as a crash."""

from pathlib import Path

import dagster as dg
from dagster_graphql.test.utils import define_out_of_process_context, execute_dagster_graphql

from clone_pipeline.demo import PERSONAS_DIR
from clone_pipeline.launch.launch import run_job_for_user
from clone_pipeline.services.ingest import import_export

READINESS = dg.AssetCheckKey(dg.AssetKey("collected_training_data"), "readiness")
WHY = "3 question categories covered; at least 5 needed"
WORKSPACE = Path(__file__).parents[2] / "workspace.yaml"

UI_QUERY = """{ assetNodes {
  assetKey { path }
  assetPartitionStatuses { ... on DefaultPartitionStatuses {
    materializedPartitions failedPartitions } }
  assetChecksOrError { ... on AssetChecks { checks { name
    partitionStatuses { ... on AssetCheckDefaultPartitionStatuses {
      succeededPartitions failedPartitions } } } } } } }"""


def test_not_ready_user_fails_the_readiness_check_not_the_run(sqlite_env_settings, instance):
    for name in ("margaret-ellis", "rosa-delgado"):
        import_export(PERSONAS_DIR / name, sqlite_env_settings)
    ready = run_job_for_user(instance, "data_only", "margaret-ellis")
    stopped = run_job_for_user(instance, "data_only", "rosa-delgado")
    assert ready.success and not stopped.success
    assert stopped.materialized == ["collected_training_data"]
    assert stopped.failed_checks == {
        "readiness": f"not ready yet: {WHY} (user rosa-delgado)"}

    # The stored run: it ends as a readiness stop, not a crash.
    run = instance.get_run_by_id(stopped.run_id)
    assert run.status == dg.DagsterRunStatus.SUCCESS
    events = [r.event_log_entry for r in instance.get_records_for_run(stopped.run_id).records]
    types = {e.dagster_event.event_type for e in events if e.dagster_event}
    assert dg.DagsterEventType.STEP_FAILURE not in types
    assert dg.DagsterEventType.STEP_SKIPPED in types  # formatted_datasets
    assert not any(e.error_info for e in events)
    text = "\n".join(e.message for e in events)
    assert "DagsterAssetCheckFailedError" not in text and "Traceback" not in text
    warnings = [e.user_message for e in events if e.level == 30]  # logging.WARNING
    assert warnings == [f"not ready yet: {WHY} (user rosa-delgado)"]

    # The check's history is per user: each evaluation names its partition and user.
    history = {rec.partition: rec for rec in instance.event_log_storage
               .get_asset_check_execution_history(READINESS, limit=10)}
    assert set(history) == {"margaret-ellis", "rosa-delgado"}
    failed = history["rosa-delgado"].event.dagster_event.event_specific_data
    assert not failed.passed and failed.severity == dg.AssetCheckSeverity.ERROR
    assert failed.description == f"not ready yet: {WHY} (user rosa-delgado)"
    assert failed.metadata["user"].value == "rosa-delgado"
    passed = history["margaret-ellis"].event.dagster_event.event_specific_data
    assert passed.passed and passed.metadata["user"].value == "margaret-ellis"
    assert passed.description == "ready: all thresholds met (user margaret-ellis)"

    # What the UI's asset graph reads: the check is red for Rosa and green for Margaret;
    # her collected data is materialised and her formatted dataset is missing, not failed.
    # (entering the request context loads dynamic partitions, as the webserver does)
    with define_out_of_process_context(str(WORKSPACE), None, instance) as context, context:
        nodes = {tuple(n["assetKey"]["path"]): n for n in
                 execute_dagster_graphql(context, UI_QUERY).data["assetNodes"]}
    collected = nodes[("collected_training_data",)]
    [check] = [c for c in collected["assetChecksOrError"]["checks"] if c["name"] == "readiness"]
    assert check["partitionStatuses"] == {"succeededPartitions": ["margaret-ellis"],
                                          "failedPartitions": ["rosa-delgado"]}
    assert sorted(collected["assetPartitionStatuses"]["materializedPartitions"]) == [
        "margaret-ellis", "rosa-delgado"]
    formatted = nodes[("formatted_datasets",)]["assetPartitionStatuses"]
    assert formatted == {"materializedPartitions": ["margaret-ellis"], "failedPartitions": []}
