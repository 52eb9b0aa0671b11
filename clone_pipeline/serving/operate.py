"""The operating half of the REST API: collect, format, voice integration, training through
the GPU queue, progress (also as server-sent events), analytics and complete workflows.

Every launch goes through the launch layer, queued through the Dagster webserver
(``CLONE_DAGSTER_URL``), so it waits in the run queue and shows in the UI; run configs are the
assets' typed configs. A user token acts on its own user; another user's id, like an unknown
one, is a 404. Admin tokens act on anyone and alone may create queues.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from clone_pipeline.defs.config import CollectConfig, FormatConfig, VoiceIntegrationConfig
from clone_pipeline.launch import progress
from clone_pipeline.launch import queues as queue_control
from clone_pipeline.launch import workflows as flows
from clone_pipeline.launch.dagster_api import DagsterUnavailableError, LaunchError
from clone_pipeline.launch.instance import SharedInstance
from clone_pipeline.launch.launch import asset_config, launch_tags, run_job_for_user
from clone_pipeline.launch.names import COMPLETE_WORKFLOW
from clone_pipeline.launch.runs import Run, RunStatus, UnknownRunError, run_of, wait_for_run
from clone_pipeline.services import datasets, queues
from clone_pipeline.services import training as training_runs
from clone_pipeline.services import workflows as workflow_rows
from clone_pipeline.services.tokens import Principal
from clone_pipeline.services.users import require_user
from clone_pipeline.services.voice import integration_of_run
from clone_pipeline.services.workflows import UnknownWorkflowError
from clone_pipeline.serving.auth import Who
from clone_pipeline.serving.errors import ApiError, not_found
from clone_pipeline.serving.operate_schemas import (
    CollectRequest,
    FormatRequest,
    GpuManagerRequest,
    VoiceIntegrateRequest,
    WorkflowRequest,
)
from clone_pipeline.settings import Settings
from clone_pipeline.training.base_models import DEFAULT_BASE_MODEL
from clone_pipeline.training.config import TrainConfig
from clone_pipeline.training.hardware import gpu_status, hardware_class

SSE_POLL_S = 1.0
RunId = Annotated[str, Query(min_length=1, max_length=64)]


def add_operate_routes(app: FastAPI, settings: Settings) -> SharedInstance:
    """The operating routes on *app*; returns the Dagster instance they share (to close)."""
    dagster = SharedInstance(settings)
    app.include_router(_router(settings, dagster))
    return dagster


async def _call(fn: Callable, *args, **kwargs):
    """Run a blocking service call, turning its domain errors into API errors."""
    try:
        return await run_in_threadpool(fn, *args, **kwargs)
    except DagsterUnavailableError as exc:
        raise ApiError(503, str(exc), kind="service_unavailable_error") from None
    except LaunchError as exc:
        refused = str(exc).startswith("run config refused")
        raise ApiError(422 if refused else 502, str(exc),
                       "trainingConfig" if refused else None,
                       kind="invalid_request_error" if refused else "dagster_error") from None
    except queues.UnknownQueueError as exc:
        raise ApiError(404, str(exc), "queueName", kind="not_found_error") from None
    except queues.QueueError as exc:
        raise ApiError(422, str(exc)) from None
    except (UnknownWorkflowError, UnknownRunError) as exc:
        raise ApiError(404, str(exc), kind="not_found_error") from None
    except LookupError as exc:  # an unknown user
        raise ApiError(404, str(exc), "userId", kind="not_found_error") from None


def _user_of(who: Principal, user_id: str | None) -> str:
    """Whose data a request acts on: a user token its own (another id is a 404, as if it did
    not exist); an admin token must name one."""
    if who.admin:
        if not user_id:
            raise ApiError(422, "userId: an admin token names the user", "userId")
        return user_id
    if user_id not in (None, who.external_id):
        raise not_found(f"user {user_id!r}")
    return who.external_id


def _check_owner(who: Principal, owner: str | None, what: str) -> None:
    if not who.admin and owner != who.external_id:
        raise not_found(what)


def _router(settings: Settings, dagster: SharedInstance) -> APIRouter:
    router = APIRouter(tags=["operate"])

    async def launch_and_answer(who: Principal, user: str, assets: list[str],
                                config: dict[str, Any], wait: float, answer: Callable
                                ) -> JSONResponse:
        instance = await _call(dagster.get)
        run = await _call(run_job_for_user, instance, COMPLETE_WORKFLOW, user, config,
                          launch_tags(settings, None, queues.DEFAULT_PRIORITY), settings,
                          assets=assets, queued=True)
        await run_in_threadpool(wait_for_run, instance, run.run_id, wait)
        return await run_answer(who, run.run_id, answer)

    async def run_answer(who: Principal, run_id: str, answer: Callable) -> JSONResponse:
        outcome = await _call(run_of, await _call(dagster.get), run_id)
        _check_owner(who, outcome.user, f"run {run_id!r}")
        # success: the run is on its way or done; a failed or cancelled one says why.
        body: dict[str, Any] = {"success": outcome.status not in (RunStatus.FAILED,
                                                                  RunStatus.CANCELLED),
                                "runId": run_id,
                                "userId": outcome.user, "status": outcome.status,
                                "error": outcome.error}
        if not outcome.finished:
            body["poll"] = "GET this path with ?runId=" + run_id
            return JSONResponse(body, status_code=202)
        body.update(await run_in_threadpool(answer, settings, outcome))
        return JSONResponse(body)

    # ------------------------------------------------------------------ data and voice

    @router.post("/api/training/collect-data")
    async def collect_data(body: CollectRequest, who: Who) -> JSONResponse:
        user = _user_of(who, body.userId)
        config = asset_config({"collected_training_data": CollectConfig(
            include_life_stories=body.includeLifeStories,
            include_milestones=body.includeMilestones, min_word_count=body.minWordCount)})
        return await launch_and_answer(who, user, ["collected_training_data"], config,
                                       body.waitSeconds, _collected)

    @router.get("/api/training/collect-data")
    async def collect_data_status(runId: RunId, who: Who) -> JSONResponse:  # noqa: N803
        return await run_answer(who, runId, _collected)

    @router.post("/api/training/format-data")
    async def format_data(body: FormatRequest, who: Who) -> JSONResponse:
        user = _user_of(who, body.userId)
        config = asset_config({"formatted_datasets": FormatConfig(
            include_system_prompts=body.includeSystemPrompts, max_length=body.maxLength,
            template_style=body.templateStyle)})
        return await launch_and_answer(who, user, ["formatted_datasets"], config,
                                       body.waitSeconds,
                                       lambda s, o: _formatted(s, o, body.format))

    @router.get("/api/training/format-data")
    async def format_data_status(runId: RunId, who: Who,  # noqa: N803
                                 format: str = TrainConfig.train_format) -> JSONResponse:  # noqa: A002
        return await run_answer(who, runId, lambda s, o: _formatted(s, o, format))

    @router.post("/api/voice-llm/integrate")
    async def voice_integrate(body: VoiceIntegrateRequest, who: Who) -> JSONResponse:
        user = _user_of(who, body.userId)
        config = asset_config({"voice_alignment": VoiceIntegrationConfig(
            voice_weight=body.voiceWeight, text_weight=body.textWeight,
            emotional_alignment=body.emotionalAlignment,
            personality_consistency=body.personalityConsistency,
            prosody_mapping=body.prosodyMapping,
            speech_pattern_learning=body.speechPatternLearning)})
        return await launch_and_answer(who, user, ["voice_profile", "voice_alignment"], config,
                                       body.waitSeconds, _integrated)

    @router.get("/api/voice-llm/integrate")
    async def voice_integrate_status(runId: RunId, who: Who) -> JSONResponse:  # noqa: N803
        return await run_answer(who, runId, _integrated)

    # ------------------------------------------------------------- training and the GPUs

    async def gpu_manager(body: GpuManagerRequest, who: Who) -> dict[str, Any]:
        if body.action == "get_gpu_status":
            return {"success": True, **await run_in_threadpool(_gpu_metrics, settings)}
        if body.action == "create_admin_queue":
            if not who.admin:
                raise ApiError(403, "creating a training queue needs an admin token",
                               kind="permission_error")
            queue = await _call(queues.create_queue, settings, body.queueName or "",
                                body.adminId or who.external_id or "admin",
                                body.maxConcurrentJobs, body.priorityWeights or {})
            return {"success": True, "queue": queue.as_dict()}
        if body.action == "stop_training":
            job = body.jobId
            if not job:
                raise ApiError(422, "jobId is required for stop_training", "jobId")
            instance = await _call(dagster.get)
            owner = await _call(progress.job_owner, settings, instance, job)
            _check_owner(who, owner, f"job {job!r}")
            status = await _call(progress.stop_job, settings, instance, job)
            return {"success": True, "jobId": job, "status": status}
        user = _user_of(who, body.userId)
        if body.action == "optimize_settings":
            await _call(require_user, settings, user)
            base = (body.trainingConfig or {}).get("base_model", DEFAULT_BASE_MODEL)
            found = await _call(training_runs.recommend_settings, settings, user, str(base))
            return {"success": True, "userId": user, **found}
        # start_training
        instance = await _call(dagster.get)
        config = _training_config(body.trainingConfig)
        run_id = await _call(flows.start_training, settings, instance, user,
                             queue=body.queueName, priority=body.priority, run_config=config)
        return {"success": True, "jobId": run_id, "userId": user, "status": RunStatus.QUEUED,
                "queueName": body.queueName, "priority": body.priority,
                "progress": f"/api/training/progress?jobId={run_id}"}

    async def gpu_manager_view(who: Who, view: str = "gpu_metrics") -> dict[str, Any]:
        if view == "gpu_metrics":
            return {"success": True, **await run_in_threadpool(_gpu_metrics, settings)}
        if view != "system_status":
            raise ApiError(422, f"view must be gpu_metrics or system_status, not {view!r}",
                           "view")
        instance = await _call(dagster.get)
        return {"success": True, **await _call(_system_status, settings, instance, who)}

    for path in ("/api/training/rtx5090-manager", "/api/training/gpu-manager"):
        router.add_api_route(path, gpu_manager, methods=["POST"],
                             summary="Training, GPU status, settings and admin queues")
        router.add_api_route(path, gpu_manager_view, methods=["GET"],
                             summary="GPU metrics or the system's status")

    @router.get("/api/training/progress")
    async def training_progress(who: Who, jobId: RunId,  # noqa: N803
                                detailed: bool = False,
                                realTime: bool = False):  # noqa: N803
        instance = await _call(dagster.get)
        owner = await _call(progress.job_owner, settings, instance, jobId)
        _check_owner(who, owner, f"job {jobId!r}")
        if not realTime:
            return await _call(progress.training_progress, settings, instance, jobId, detailed)
        return StreamingResponse(_progress_events(settings, instance, jobId, detailed),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache",
                                          "X-Accel-Buffering": "no"})

    @router.get("/api/training/analytics")
    async def training_analytics(who: Who, jobId: RunId) -> dict[str, Any]:  # noqa: N803
        instance = await _call(dagster.get)
        owner = await _call(progress.job_owner, settings, instance, jobId)
        _check_owner(who, owner, f"job {jobId!r}")
        found = await _call(progress.training_progress, settings, instance, jobId, True)
        return {"success": True, "jobId": jobId, "status": found["status"],
                "analytics": found["analytics"]}

    # ----------------------------------------------------------------------- workflows

    @router.post("/api/training/workflow")
    async def start_workflow(body: WorkflowRequest, who: Who) -> dict[str, Any]:
        user = _user_of(who, body.userId)
        instance = await _call(dagster.get)
        config = _training_config(body.trainingConfig)
        view = await _call(flows.start_workflow, settings, instance, user,
                           include_voice_integration=body.includeVoiceIntegration,
                           auto_deployment=body.autoDeployment, queue=body.queueName,
                           priority=body.priority, run_config=config)
        return {"success": True, **view.as_dict()}

    @router.get("/api/training/workflow")
    async def workflow_status(who: Who, workflowId: Annotated[  # noqa: N803
            str | None, Query(min_length=1, max_length=64)] = None) -> dict[str, Any]:
        instance = await _call(dagster.get)
        if workflowId is None:
            found = await _call(flows.active_workflows, settings, instance,
                                None if who.admin else who.external_id)
            return {"success": True, "workflows": [w.as_dict() for w in found]}
        view = await _call(flows.workflow_status, settings, instance, workflowId)
        _check_owner(who, view.user, f"workflow {workflowId!r}")
        return {"success": True, "workflow": view.as_dict()}

    return router


# ------------------------------------------------------------------------- answers

def _training_config(fields: dict[str, Any] | None) -> dict[str, Any]:
    """trained_adapter's config as the request gives it (the launchpad's fields; Dagster
    checks them, and a refusal is a 422 naming trainingConfig)."""
    return asset_config({"trained_adapter": fields} if fields else {})


def _collected(settings: Settings, outcome: Run) -> dict[str, Any]:
    found = datasets.produced_by_run(settings, outcome.run_id)["collected"]
    if found is None:
        return {}
    sources, quality, readiness = found["sources"], found["quality"], found["readiness"]
    return {
        "datasetVersion": found["version"],
        "dataCollected": {"totalExamples": found["total_examples"],
                          "totalWords": found["total_words"],
                          "sources": {"responses": sources.get("responses", 0),
                                      "lifeStories": sources.get("life_stories", 0),
                                      "milestones": sources.get("milestone_messages", 0)}},
        "qualityMetrics": {key: quality.get(key) for key in (
            "overall_score", "category_coverage", "emotional_diversity",
            "qualifying_responses")},
        "readinessAssessment": {"ready": found["ready"], "score": readiness.get("score"),
                                "reasons": readiness.get("reasons", [])},
    }


def _formatted(settings: Settings, outcome: Run, fmt: str) -> dict[str, Any]:
    rows = {row["format"]: row for row in
            datasets.produced_by_run(settings, outcome.run_id)["formatted"]}
    if fmt not in rows:
        return {"format": fmt, "formats": sorted(rows), "schemaCheck": outcome.checks.get(
            "schema")}
    chosen = rows[fmt]
    return {"format": fmt, "datasetVersion": chosen["dataset_version"],
            "formattedData": {"trainExamples": chosen["train"], "evalExamples": chosen["eval"],
                              "truncated": chosen["truncated"],
                              "droppedTooLong": chosen["dropped"],
                              "tokenStats": chosen["token_stats"]},
            "templateStyle": chosen["template_style"], "maxLength": chosen["max_length"],
            "formats": sorted(rows), "schemaCheck": outcome.checks.get("schema")}


def _integrated(settings: Settings, outcome: Run) -> dict[str, Any]:
    found = integration_of_run(settings, outcome.run_id) or {}
    return {**found, "validation": outcome.checks.get("integration_valid"),
            "audioQuality": outcome.checks.get("audio_quality")}


def _gpu_metrics(settings: Settings) -> dict[str, Any]:
    gpus, nvml = gpu_status()
    return {"nvml": nvml, "gpus": [g.__dict__ for g in gpus],
            "gpuSlots": queue_control.gpu_slots(settings, len(gpus)),
            "hardwareProfile": hardware_class()}


def _system_status(settings: Settings, instance, who: Principal) -> dict[str, Any]:
    return {
        **_gpu_metrics(settings),
        "gpuPool": queue_control.gpu_pool_load(instance),
        "queues": [{**q.as_dict(), **queue_control.queue_load(instance, q.name)}
                   for q in queues.list_queues(settings)] if who.admin else [],
        # the rows as the workflow_progress sensor last wrote them (a read writes nothing)
        "activeWorkflows": len(workflow_rows.active_workflows(
            settings, None if who.admin else who.external_id)),
    }


async def _progress_events(settings: Settings, instance, job_id: str, detailed: bool):
    """One `progress` event whenever the step or status changes, then `end` when the job
    has finished."""
    follower = progress.ProgressFollower(settings, instance, job_id, detailed)
    while True:
        found = await run_in_threadpool(follower.poll)
        if found is not None:
            yield f"event: progress\ndata: {json.dumps(found.as_dict(detailed), default=str)}\n\n"
        if follower.finished:
            yield f"event: end\ndata: {json.dumps({'status': follower.last.status})}\n\n"
            return
        await asyncio.sleep(SSE_POLL_S)
