"""The operating REST API end to end: a real gateway (uvicorn) in front of the session's
`dagster dev` (webserver and daemon, PostgreSQL storage), on two users of its own. Every
launch goes through the run queue and is answered from what the run materialised; tokens
keep each family to its own data."""

import json

import httpx
import pytest

from clone_pipeline.services.tokens import create_token
from clone_pipeline_tests.test_defs.dagster_dev import wait_for

OWNER, OTHER = "op-margaret", "op-walter"
QUEUE = "op-families"  # the shared data root may hold other tests' queues
TRAIN = {"max_steps": 3, "batch_size": 4, "context_length": 256, "save_steps": 100,
         "eval_steps": 100, "min_free_disk_gb": 0.1}


def _error(reply: httpx.Response) -> str:
    return reply.json()["error"]["message"]


def _sse(http: httpx.Client, path: str, headers: dict) -> list[tuple[str, dict]]:
    """Every (event, data) of a server-sent event stream, until the server ends it."""
    events, name = [], None
    with http.stream("GET", path, headers=headers, timeout=600) as reply:
        assert reply.status_code == 200, reply.read()
        assert reply.headers["content-type"].startswith("text/event-stream")
        for line in reply.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[6:])))
    return events


@pytest.mark.slow
@pytest.mark.postgres
def test_operate_api_launches_through_the_queue_and_keeps_users_apart(
        live_dagster, pg_server, local_tiny, gateway_factory):
    with live_dagster.instance() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        live_dagster.add_user(instance, "margaret-ellis", OWNER, recordings=True)
        live_dagster.add_user(instance, "walter-okafor", OTHER)
        settings = live_dagster.settings
        url = gateway_factory(settings)
        admin = {"Authorization": f"Bearer {create_token(settings, None, admin=True)[0]}"}
        mine = {"Authorization": f"Bearer {create_token(settings, OWNER)[0]}"}
        theirs = {"Authorization": f"Bearer {create_token(settings, OTHER)[0]}"}
        http = httpx.Client(base_url=url, timeout=300)

        # Collect: answered from the run's materialisation, in the seed's shape.
        reply = http.post("/api/training/collect-data", headers=mine,
                          json={"minWordCount": 20, "waitSeconds": 120})
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["success"] and body["userId"] == OWNER
        collected = body["dataCollected"]
        assert collected["totalExamples"] == sum(collected["sources"].values()) > 0
        assert body["readinessAssessment"]["ready"] is True
        assert 0 <= body["qualityMetrics"]["overall_score"] <= 100
        run = instance.get_run_by_id(body["runId"])
        assert run.tags["dagster/partition"] == OWNER  # a queued run, visible in the UI

        # Another family's id, or one that does not exist, is not found for a user token.
        for who, user in ((mine, OTHER), (admin, "nobody-here")):
            reply = http.post("/api/training/collect-data", headers=who, json={"userId": user})
            assert reply.status_code == 404, reply.text
        assert http.get(f"/api/training/collect-data?runId={body['runId']}",
                        headers=theirs).status_code == 404

        # Format: returns at once with a run id to poll when asked not to wait.
        reply = http.post("/api/training/format-data", headers=mine,
                          json={"format": "alpaca", "maxLength": 1024, "waitSeconds": 0})
        assert reply.status_code in (200, 202), reply.text
        run_id = reply.json()["runId"]
        formatted = wait_for(lambda: (lambda r: r.json() if r.status_code == 200 else None)(
            http.get(f"/api/training/format-data?runId={run_id}&format=alpaca",
                     headers=mine)), 300, "the format run", 1)
        assert formatted["formattedData"]["trainExamples"] > 0
        assert "alpaca" in formatted["formats"] and formatted["schemaCheck"]["passed"]

        # Queues: admin only, checked, visible in the system status.
        manager = "/api/training/rtx5090-manager"
        queue = {"action": "create_admin_queue", "adminId": "admin-1",
                 "queueName": QUEUE, "maxConcurrentJobs": 2,
                 "priorityWeights": {"high": 3, "medium": 2, "low": 1}}
        assert http.post(manager, headers=mine, json=queue).status_code == 403
        reply = http.post(manager, headers=admin, json=queue)
        assert reply.status_code == 200, reply.text
        assert reply.json()["queue"]["maxConcurrentJobs"] == 2
        assert http.post(manager, headers=admin, json=queue).status_code == 422
        status = http.get("/api/training/gpu-manager?view=system_status", headers=admin).json()
        assert QUEUE in [q["queueName"] for q in status["queues"]]
        assert status["gpuPool"]["slots"] >= 1

        # GPU figures are NVML's or absent, never made up (no GPU here).
        gpus = http.post(manager, headers=mine, json={"action": "get_gpu_status"}).json()
        assert gpus["gpus"] == [] and gpus["nvml"].startswith("unavailable")
        tuned = http.post(manager, headers=mine, json={"action": "optimize_settings"}).json()
        assert tuned["recommended"]["hardware_profile"] == "cpu"
        assert tuned["memory"]["fits"] and tuned["recommended"]["micro_batch_size"] >= 1

        # Training through the queue, followed live over server-sent events.
        reply = http.post(manager, headers=mine, json={
            "action": "start_training", "queueName": QUEUE, "priority": "high",
            "trainingConfig": TRAIN})
        assert reply.status_code == 200, reply.text
        job = reply.json()["jobId"]
        assert http.get(f"/api/training/progress?jobId={job}", headers=theirs
                        ).status_code == 404
        events = _sse(http, f"/api/training/progress?jobId={job}&realTime=true", mine)
        assert events[-1] == ("end", {"status": "completed"}), events[-3:]
        steps = [e["progress"]["currentStep"] for name, e in events
                 if name == "progress" and e["progress"]["currentStep"] is not None]
        assert steps and steps[-1] == 3 and steps == sorted(steps)
        detailed = http.get(f"/api/training/progress?jobId={job}&detailed=true",
                            headers=mine).json()
        assert detailed["progress"]["percentage"] == 100.0
        losses = detailed["analytics"]["lossProgression"]
        assert [p["step"] for p in losses] == [1, 2, 3]
        assert all(p["loss"] > 0 for p in losses)
        assert detailed["metrics"]["current"]["gpu_utilization"] is None  # CPU: unavailable
        assert detailed["analytics"]["hardwarePerformance"]["meanTokensPerSecond"] > 0
        analytics = http.get(f"/api/training/analytics?jobId={job}", headers=mine).json()
        assert analytics["analytics"]["lossProgression"] == losses

        # A complete workflow (no voice, no deployment): every stage recorded with timings,
        # and a second one is estimated from the first's measured durations.
        start = {"action": "start_complete_workflow", "includeVoiceIntegration": False,
                 "autoDeployment": False, "trainingConfig": TRAIN}
        first = http.post("/api/training/workflow", headers=mine, json=start).json()
        assert first["status"] == "pending" and first["estimatedCompletion"] is None
        assert first["estimateBasis"].startswith("no estimate")
        assert [s["name"] for s in first["stages"]] == [
            "collected_training_data", "memory_index", "formatted_datasets",
            "trained_adapter", "model_evaluation"]
        assert http.get(f"/api/training/workflow?workflowId={first['workflowId']}",
                        headers=theirs).status_code == 404
        done = wait_for(lambda: (lambda w: w if w["status"] in ("completed", "failed")
                                 else None)(http.get(
                                     f"/api/training/workflow?workflowId={first['workflowId']}",
                                     headers=mine).json()["workflow"]), 600,
                        "the workflow to finish", 2)
        assert done["status"] == "completed", done["error"]
        assert all(s["status"] == "completed" and s["durationSeconds"] > 0
                   for s in done["stages"])
        second = http.post("/api/training/workflow", headers=mine, json=start).json()
        assert second["estimatedCompletion"] is not None
        assert second["estimateBasis"].startswith("median of the measured durations of 1-1")
        active = http.get("/api/training/workflow", headers=mine).json()["workflows"]
        assert second["workflowId"] in [w["workflowId"] for w in active]
        assert http.get("/api/training/workflow", headers=theirs).json()["workflows"] == []
        stopped = http.post(manager, headers=mine, json={
            "action": "stop_training", "jobId": second["dagsterRunId"]})
        assert stopped.status_code == 200, stopped.text
        wait_for(lambda: http.get(f"/api/training/workflow?workflowId={second['workflowId']}",
                                  headers=mine).json()["workflow"]["status"] == "cancelled",
                 300, "the second workflow to be cancelled", 1)

        # Voice-LLM integration: the five stages with the request's settings.
        reply = http.post("/api/voice-llm/integrate", headers=admin, json={
            "userId": OWNER, "voiceWeight": 0.7, "textWeight": 0.8, "waitSeconds": 0})
        assert reply.status_code in (200, 202), reply.text
        run_id = reply.json()["runId"]
        voice = wait_for(lambda: (lambda r: r.json() if r.status_code == 200 else None)(
            http.get(f"/api/voice-llm/integrate?runId={run_id}", headers=mine)), 300,
            "the voice run", 1)
        assert voice["settings"]["voice_weight"] == 0.7
        assert len(voice["stages"]) == 5 and voice["validation"] is not None
