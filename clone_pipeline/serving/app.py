"""The gateway application: OpenAI-compatible chat, the seed's deploy and voice endpoints,
health, and the chat page. Build it with ``create_app(settings, engine)``."""

from __future__ import annotations

import hashlib
import io
import json
import time
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import anyio
import httpx
from fastapi import FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from clone_pipeline.memory.grounding import ABSTAIN_REPLY, MEMORY_WORDS, Grounding, ground
from clone_pipeline.services import deployments as deploys
from clone_pipeline.services import recordings
from clone_pipeline.services.engine import EngineHandle
from clone_pipeline.services.memory import MemoryCache
from clone_pipeline.services.tokens import Principal, authenticate
from clone_pipeline.serving.auth import Authorization, Who, bearer_token
from clone_pipeline.serving.cache import cache_key, is_deterministic, make_cache
from clone_pipeline.serving.errors import (
    ENGINE_RETRY_AFTER_S,
    ApiError,
    api_error_handler,
    engine_unreachable,
    error_body,
    http_error_handler,
    not_found,
    unauthorized,
    validation_handler,
)
from clone_pipeline.serving.limits import BodyLimit, Limits, RateLimiter
from clone_pipeline.serving.logs import LogWriter
from clone_pipeline.serving.operate import add_operate_routes
from clone_pipeline.serving.schemas import ChatRequest, DeployAction
from clone_pipeline.settings import Settings

STATIC = Path(__file__).parent / "static"


class Gateway:
    """What every request needs: settings, the engine, the cache, limits and the log writer."""

    def __init__(self, settings: Settings, engine: EngineHandle, limits: Limits):
        self.settings, self.engine, self.limits = settings, engine, limits
        self.http = httpx.AsyncClient(
            base_url=engine.client.base_url, headers=engine.client.headers,
            timeout=httpx.Timeout(limits.request_timeout_s, connect=5.0),
            limits=httpx.Limits(max_connections=512, max_keepalive_connections=128))
        self.cache = make_cache(settings.cache_url)
        self.memories = MemoryCache(settings)
        self.limiter = RateLimiter(limits.rate_per_minute)
        self.logs = LogWriter(settings)

    async def close(self) -> None:
        await self.http.aclose()
        await self.cache.close()
        self.logs.close()

    # -------------------------------------------------------------- who and which model

    def authorize(self, token: str | None) -> Principal:
        """The caller with this bearer token (blocking: a worker thread's); 401 without a
        valid token, 429 over the rate limit."""
        found = authenticate(self.settings, token) if token else None
        if found is None:
            raise unauthorized()
        wait = self.limiter.take(found.token_id)
        if wait:
            raise ApiError(429, f"rate limit of {self.limits.rate_per_minute} requests per "
                                f"minute reached; retry in {wait:.0f} s",
                           kind="rate_limit_error", headers={"Retry-After": f"{wait:.0f}"})
        return found

    async def principal(self, request: Request) -> Principal:
        return await run_in_threadpool(
            self.authorize, bearer_token(request.headers.get("authorization", "")))

    def find(self, principal: Principal, model: str, param: str = "model"
             ) -> deploys.Deployment:
        """*model*, an active deployment the principal may use (blocking)."""
        try:
            found = deploys.get_deployment(self.settings, model, principal)
        except deploys.DeploymentNotFound:
            # the same words whether it does not exist or is another family's
            raise not_found(f"deployment {model!r}", "GET /v1/models lists the deployments "
                            "this token may use (e.g. USER-v1)") from None
        except deploys.DeploymentError as exc:
            raise ApiError(422, str(exc), param) from None
        if found.status != "active":
            raise ApiError(409, f"deployment {model!r} is {found.status}"
                                + (f": {found.error}" if found.error else ""),
                           param, kind="conflict_error")
        return found

    def authorize_and_find(self, token: str, model: str
                           ) -> tuple[Principal, deploys.Deployment]:
        """Both lookups of a chat request in one worker-thread hop (the cached answer's
        path is mostly these)."""
        principal = self.authorize(token)
        return principal, self.find(principal, model)

    async def current(self, principal: Principal, model: str, send, param: str = "model",
                      found: deploys.Deployment | None = None):
        """``send(deployment)`` with the deployment as it is now (*found*, if just looked
        up). An update switches the row to a new adapter and then unloads the old one, so a
        request that looked the row up just before gets the engine's 404 (or, on a replica
        resolving it from the published folder, a failed load): it looks again, once."""
        for attempt in (1, 2):
            dep = (found if attempt == 1 and found is not None else
                   await run_in_threadpool(self.find, principal, model, param))
            started = time.perf_counter()
            try:
                return await send(dep)
            except AdapterGone as exc:
                if attempt == 2:
                    self.log(dep, started, "error", None, error=f"engine_{exc.engine_status}")
                    raise

    # ------------------------------------------------------------------ one completion

    def grounding(self, dep: deploys.Deployment, messages: list[dict]) -> Grounding:
        """The person's memories for this turn (blocking: embeds the question). Nothing
        when they have no memory index, or the client brought its own system prompt."""
        index = self.memories.get(dep.user)
        if index is None or any(m["role"] == "system" for m in messages):
            return Grounding()
        # a fifth of the context in words (BPE: 1.3-2 tokens a word): room for the rest
        return ground(index, messages,
                      budget_words=min(MEMORY_WORDS, self.limits.context_tokens // 5))

    def engine_payload(self, dep: deploys.Deployment, messages: list[dict[str, str]],
                       sampling: dict[str, Any], grounding: Grounding | None = None
                       ) -> dict[str, Any]:
        if not any(m["role"] == "system" for m in messages):
            system = (grounding or Grounding()).system_prompt(dep.system_prompt)
            messages = [{"role": "system", "content": system}, *messages]
        max_tokens = sampling.get("max_tokens")
        if max_tokens is not None and max_tokens >= self.limits.context_tokens:
            raise ApiError(422, f"max_tokens {max_tokens} does not fit the model's context of "
                                f"{self.limits.context_tokens} tokens", "max_tokens")
        # Salted per user: one family's prompts can never hit (and so time) another's cache.
        salt = hashlib.sha256(f"clone-user:{dep.user_id}".encode()).hexdigest()[:32]
        return {"model": dep.adapter_name, "messages": messages, **sampling, "cache_salt": salt}

    def log(self, dep: deploys.Deployment, started: float, status: str, usage: dict | None,
            first_token: float | None = None, cached: bool = False,
            error: str | None = None) -> None:
        self.logs.add({
            "deployment_id": dep.id, "user_id": dep.user_id, "cached": cached,
            "prompt_tokens": (usage or {}).get("prompt_tokens"),
            "completion_tokens": (usage or {}).get("completion_tokens"),
            "latency_ms": round((time.perf_counter() - started) * 1000, 2),
            "ttft_ms": round((first_token - started) * 1000, 2) if first_token else None,
            "status": status, "error": error})

    async def complete(self, dep: deploys.Deployment, payload: dict[str, Any],
                       requested_model: str, grounding: Grounding | None = None
                       ) -> dict[str, Any]:
        """A whole answer (from the cache when it is deterministic and cached), with the
        memories it was given as ``sources``."""
        started = time.perf_counter()
        grounding = grounding or Grounding()
        key = None
        if dep.caching and is_deterministic(payload):
            key = cache_key(str(dep.user_id), str(dep.id), dep.adapter_name, dep.adapter_sha256,
                            {**{k: v for k, v in payload.items() if k != "model"},
                             "sources": grounding.passage_ids()})
            hit = await self.cache.get(key)
            if hit is not None:
                answer = json.loads(hit)
                answer["model"] = requested_model
                self.log(dep, started, "ok", answer.get("usage"), cached=True)
                return answer
        try:
            response = await self.http.post("/v1/chat/completions", json=payload)
        except httpx.TimeoutException:
            self.log(dep, started, "error", None, error="timeout")
            raise ApiError(504, f"no answer within {self.limits.request_timeout_s:.0f} s",
                           kind="timeout_error") from None
        except httpx.HTTPError:
            self.log(dep, started, "error", None, error="engine_unreachable")
            raise engine_unreachable() from None
        if response.status_code != 200:
            error = self.engine_error(response.status_code, response.text, requested_model)
            if not isinstance(error, AdapterGone):  # `current` looks again, logs if it must
                self.log(dep, started, "error", None, error=f"engine_{response.status_code}")
            raise error
        answer = response.json()
        answer["model"] = requested_model
        if grounding.searched:
            answer["sources"] = grounding.sources()
        usage = answer.get("usage")
        self.log(dep, started, "ok", usage, first_token=None)
        if key is not None:
            await self.cache.set(key, json.dumps(answer).encode())
        return answer

    def engine_error(self, status: int, text: str, model: str) -> ApiError:
        if status == 404:  # the adapter was unloaded (updated or deleted) since the lookup
            return AdapterGone(not_found(f"deployment {model!r}"), status)
        if status == 400 and LOAD_FAILED in text:
            # A replica's resolver that lost the race with a withdraw: look again. An adapter
            # that fails the same way again is the server's fault, not the request's.
            return AdapterGone(ApiError(502, "the engine could not load this deployment's "
                                             f"adapter: {_engine_message(text)}", "model",
                                        kind="engine_error"), status)
        if status == 400:
            param = "max_tokens" if "max_tokens" in text or "context" in text else "messages"
            return ApiError(422, f"the engine refused the request: {_engine_message(text)}",
                            param)
        return ApiError(502, f"the engine failed ({status})", kind="engine_error")

    async def stream(self, dep: deploys.Deployment, payload: dict[str, Any],
                     requested_model: str, include_usage: bool,
                     client: Request | None = None, grounding: Grounding | None = None
                     ) -> StreamingResponse:
        """Server-sent events relayed from the engine; exactly one [DONE]. A client that
        goes away closes the engine stream, and vLLM aborts the generation: found when a
        write to it fails, or by asking *client* after each chunk (a write to a closed
        connection does not always fail, and the generation then ran to its end).

        The engine's first line is read before the response starts: vLLM 0.32 loses a
        request whose connection closes while it is being added to its engine (the abort
        finds no queue yet), and it then generates to max_tokens for nobody."""
        started = time.perf_counter()
        request = self.http.build_request(
            "POST", "/v1/chat/completions",
            json={**payload, "stream": True, "stream_options": {"include_usage": True}})
        try:
            response = await self.http.send(request, stream=True)
        except httpx.HTTPError:
            self.log(dep, started, "error", None, error="engine_unreachable")
            raise engine_unreachable() from None
        if response.status_code != 200:
            text = (await response.aread()).decode(errors="replace")
            await response.aclose()
            error = self.engine_error(response.status_code, text, requested_model)
            if not isinstance(error, AdapterGone):
                self.log(dep, started, "error", None, error=f"engine_{response.status_code}")
            raise error
        lines = response.aiter_lines()
        try:
            first = await anext(lines)
        except (httpx.HTTPError, StopAsyncIteration):
            await response.aclose()
            self.log(dep, started, "error", None, error="engine_stream")
            raise ApiError(502, "the engine stream broke", kind="engine_error") from None
        return StreamingResponse(self._relay(dep, response, _prepend(first, lines), started,
                                             requested_model, include_usage, client,
                                             grounding or Grounding()),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache",
                                          "X-Accel-Buffering": "no"})

    async def _relay(self, dep, response: httpx.Response, lines, started: float, model: str,
                     include_usage: bool, client: Request | None, grounding: Grounding):
        first, usage, status, error = None, None, "cancelled", None
        deadline = started + self.limits.request_timeout_s
        try:
            async for line in lines:
                if not line.startswith("data: "):
                    continue
                data = line[6:]
                if data.strip() == "[DONE]":
                    break
                chunk = json.loads(data)
                chunk["model"] = model
                if not chunk.get("choices"):  # the usage chunk
                    usage = chunk.get("usage")
                    if not include_usage:
                        continue
                else:
                    first = first or time.perf_counter()
                    if not include_usage:
                        chunk.pop("usage", None)
                yield f"data: {json.dumps(chunk, separators=(',', ':'))}\n\n"
                if client is not None and await client.is_disconnected():
                    return  # logged as cancelled; closing the engine stream aborts it
                if time.perf_counter() > deadline:
                    status, error = "error", "timeout"
                    yield _sse_error("the request timed out", "timeout_error")
                    break
            else:
                status = "ok"
            if status == "cancelled":
                status = "ok"
            if grounding.searched:  # a chunk with no choices: OpenAI clients skip it
                yield _sse({"object": "chat.completion.chunk", "model": model,
                            "choices": [], "sources": grounding.sources()})
            yield "data: [DONE]\n\n"
        except httpx.HTTPError:
            status, error = "error", "engine_stream"
            yield _sse_error("the engine stream broke", "engine_error")
            yield "data: [DONE]\n\n"
        finally:
            # Shielded: when the client leaves, Starlette cancels this generator, and an
            # unshielded close is itself cancelled at its first await: the engine's socket
            # then stays open and vLLM generates to the end for nobody.
            with anyio.CancelScope(shield=True):
                await response.aclose()
            self.log(dep, started, status, usage, first_token=first, error=error)


async def _prepend(first: str, rest):
    yield first
    async for line in rest:
        yield line


# How vLLM says its LoRA resolver found an adapter's folder but could not load it.
LOAD_FAILED = "was found but could not be loaded"


class AdapterGone(ApiError):
    """The engine no longer has (or could not load) the adapter the lookup named: the
    deployment may have changed since, so `current` looks again once; if it persists, the
    client gets *error*."""

    def __init__(self, error: ApiError, engine_status: int):
        super().__init__(error.status, error.message, error.param, kind=error.kind)
        self.engine_status = engine_status


def _sse(chunk: dict) -> str:
    return f"data: {json.dumps(chunk, separators=(',', ':'))}\n\n"


def _sse_error(message: str, kind: str) -> str:
    return f"data: {json.dumps({'error': {'message': message, 'type': kind}})}\n\n"


def abstention(model: str, stream: bool, include_usage: bool = False) -> Response:
    """The clone's honest answer when nothing she told them is relevant: a completion (or a
    stream of one chunk) saying so, with no sources, marked ``abstained``; no model ran, so
    its usage (in the stream's usage chunk, when asked for) is zero."""
    usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    made = int(time.time())
    reply_id = f"chatcmpl-{uuid.uuid4().hex}"
    if not stream:
        return JSONResponse({
            "id": reply_id, "object": "chat.completion", "created": made, "model": model,
            "choices": [{"index": 0, "finish_reason": "stop", "message": {
                "role": "assistant", "content": ABSTAIN_REPLY}}],
            "usage": usage, "sources": [], "abstained": True})
    base = {"id": reply_id, "object": "chat.completion.chunk", "created": made, "model": model}
    chunks = [
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant",
                                                    "content": ABSTAIN_REPLY},
                              "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        *([{**base, "choices": [], "usage": usage}] if include_usage else []),
        {**base, "choices": [], "sources": [], "abstained": True}]
    body = "".join(_sse(c) for c in chunks) + "data: [DONE]\n\n"
    return Response(body, media_type="text/event-stream",
                    headers={"Cache-Control": "no-cache"})


def _engine_message(text: str) -> str:
    try:
        body = json.loads(text)
        return str(body.get("error", {}).get("message") or body.get("message") or text)[:300]
    except (ValueError, AttributeError):
        return text[:300]


def create_app(settings: Settings, engine: EngineHandle, limits: Limits | None = None
               ) -> FastAPI:
    limits = limits or Limits.from_env(context_tokens=engine.spec.get("max_model_len", 1024))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.gateway = Gateway(settings, engine, limits)
        try:
            yield
        finally:
            await app.state.gateway.close()
            operations.close()

    app = FastAPI(title="clone_pipeline gateway", version="1",
                  description="OpenAI-compatible chat with a person's clone, the deploy and "
                              "voice endpoints, and a chat page. Every route but /healthz, "
                              "/readyz and the page needs Authorization: Bearer <token>.",
                  lifespan=lifespan)
    app.add_exception_handler(ApiError, api_error_handler)
    app.add_exception_handler(RequestValidationError, validation_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    operations = add_operate_routes(app, settings)

    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)

    def gateway(request: Request) -> Gateway:
        return request.app.state.gateway


    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz(request: Request) -> JSONResponse:
        ok = await run_in_threadpool(gateway(request).engine.client.healthy)
        if ok:
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "engine unavailable", **error_body(
            "the inference engine does not answer its health check", "engine_error")},
            status_code=503, headers={"Retry-After": str(ENGINE_RETRY_AFTER_S)})

    @app.get("/v1/models", tags=["openai"])
    async def models(request: Request, who: Who) -> dict:
        found = await run_in_threadpool(deploys.list_deployments, settings, who)
        return {"object": "list", "data": [
            {"id": d.name, "object": "model", "created": int(d.created_at.timestamp()),
             "owned_by": d.user, "display_name": d.display_name,
             "deployment_id": str(d.id), "status": d.status,
             "model_version": d.model_version} for d in found if d.status == "active"]}

    @app.post("/v1/chat/completions", tags=["openai"])
    async def chat_completions(body: ChatRequest, request: Request,
                               token: Authorization):
        gw = gateway(request)
        who, found = await run_in_threadpool(gw.authorize_and_find, token, body.model)

        async def send(dep: deploys.Deployment):
            messages = [m.model_dump() for m in body.messages]
            grounding = await run_in_threadpool(gw.grounding, dep, messages)
            include = bool(body.stream_options and body.stream_options.include_usage)
            if grounding.abstain:  # she never told them: say so instead of inventing
                return abstention(body.model, body.stream, include)
            payload = gw.engine_payload(dep, messages, body.engine_fields(), grounding)
            if body.stream:
                return await gw.stream(dep, payload, body.model, include, request, grounding)
            return JSONResponse(await gw.complete(dep, payload, body.model, grounding))

        return await gw.current(who, body.model, send, found=found)

    @app.post("/api/training/deploy", tags=["seed"])
    async def deploy(body: DeployAction, request: Request,
                     who: Who) -> JSONResponse:
        try:
            return JSONResponse(await _deploy_action(gateway(request), who, body))
        except deploys.DeploymentNotFound as exc:
            raise not_found(str(exc).removeprefix("no ")) from None
        except deploys.DeploymentError as exc:
            raise ApiError(422, str(exc)) from None
        except LookupError as exc:  # a user (named by an admin) who does not exist
            raise ApiError(404, str(exc), "userId", kind="not_found_error") from None

    @app.get("/api/voice/synthesize", tags=["seed"])
    async def synthesize(text: Annotated[str, Query(min_length=1)],
                         userId: Annotated[str, Query(min_length=1, max_length=128)],  # noqa: N803
                         who: Who, voiceId: str = "latest",  # noqa: N803
                         emotion: str = "neutral") -> Response:
        if len(text) > limits.max_speech_chars:
            raise ApiError(422, f"text: at most {limits.max_speech_chars} characters", "text")
        if not who.admin and who.external_id != userId:
            raise not_found(f"voice of {userId!r}")
        wav = await run_in_threadpool(_speak, settings, userId, text, emotion, voiceId)
        return Response(wav, media_type="audio/wav")

    @app.get("/v1/recordings/{recording_id}/audio", tags=["voice"],
             response_class=Response,
             responses={200: {"content": {"audio/*": {}},
                              "description": "the recording, or the asked seconds as WAV"}})
    async def recording_audio(
            recording_id: Annotated[str, PathParam(min_length=1, max_length=128)], who: Who,
            start: Annotated[float | None, Query(ge=0, allow_inf_nan=False)] = None,
            end: Annotated[float | None, Query(gt=0, allow_inf_nan=False)] = None
    ) -> Response:
        """The person's own recording (a source's ``recording.id``), as imported; with
        ``start`` and/or ``end`` (seconds) that cut it, that part of it as WAV. Only the
        owner's tokens may hear it: for any other token it does not exist (404)."""
        found = await run_in_threadpool(recordings.owned_recording, settings, who.user_id,
                                        recording_id)
        if found is None:
            raise not_found(f"recording {recording_id!r}")
        private = {"Cache-Control": "private, no-store"}
        first = start or 0.0
        if first == 0 and (end is None or end >= found.duration_s):  # all of it, as it was
            return FileResponse(found.path, media_type=found.media_type, headers=private)
        if first >= found.duration_s:
            raise ApiError(422, f"start: the recording is {found.duration_s:.2f} s long",
                           "start")
        if end is not None and end <= first:
            raise ApiError(422, "end: must be after start", "end")
        wav = await run_in_threadpool(recordings.recording_span, found, first, end)
        return Response(wav, media_type="audio/wav", headers=private)

    @app.get("/", include_in_schema=False)
    @app.get("/chat", include_in_schema=False)
    async def chat_page() -> FileResponse:
        return FileResponse(STATIC / "chat.html", media_type="text/html")

    return app


def _speak(settings: Settings, external_id: str, text: str, emotion: str, voice_id: str
           ) -> bytes:
    import soundfile as sf

    from clone_pipeline.services.users import require_user
    from clone_pipeline.services.voice import NoVoiceProfileError, speak_as

    try:
        require_user(settings, external_id)
        speech, profile = speak_as(settings, external_id, text, emotion)
    except LookupError:
        raise not_found(f"voice of {external_id!r}") from None
    except NoVoiceProfileError as exc:
        raise ApiError(404, str(exc), "userId", kind="not_found_error") from None
    except ValueError as exc:
        raise ApiError(422, str(exc), "emotion" if "emotion" in str(exc) else "text") from None
    if voice_id not in ("latest", str(profile.id)):
        raise not_found(f"voice {voice_id!r}")
    out = io.BytesIO()
    sf.write(out, speech.audio, speech.sample_rate, format="WAV", subtype="PCM_16")
    return out.getvalue()


async def _deploy_action(gw: Gateway, who: Principal, body: DeployAction) -> dict[str, Any]:
    """The seed's five actions on one endpoint, each answered as {"success": true, ...}."""
    settings = gw.settings
    if body.action == "get_deployments":
        found = await run_in_threadpool(deploys.list_deployments, settings, who, body.userId)
        return {"success": True, "deployments": [d.public() for d in found]}
    if body.action == "deploy_model":
        external_id = await run_in_threadpool(_owner, settings, who, body)
        dep = await run_in_threadpool(
            lambda: deploys.deploy_model(
                settings, gw.engine, external_id, version=body.modelVersion,
                model_version_id=_uuid(body.modelVersionId, "modelVersionId"),
                name=body.deploymentName, inference_type=body.inferenceType,
                optimizations=body.optimizations))
        return {"success": True, "deployment": dep.public()}
    if body.action == "update_deployment":
        target = body.deploymentId or body.modelId
        changes = {**(body.updates or {})}
        dep = await run_in_threadpool(
            lambda: deploys.update_deployment(
                settings, gw.engine, _required(target, "deploymentId"), who,
                name=changes.get("deploymentName", body.deploymentName),
                version=changes.get("modelVersion", body.modelVersion),
                optimizations=changes.get("optimizations", body.optimizations),
                inference_type=changes.get("inferenceType")))
        return {"success": True, "deployment": dep.public()}
    if body.action == "delete_deployment":
        target = _required(body.deploymentId or body.modelId, "deploymentId")
        dep = await run_in_threadpool(deploys.delete_deployment, settings, gw.engine, target,
                                      who)
        return {"success": True, "deployment": dep.public()}
    # inference
    options = body.options
    sampling = {"max_tokens": options.maxTokens, "temperature": options.temperature,
                "top_p": options.topP} | ({"seed": options.seed} if options.seed is not None
                                          else {})
    user_prompt = _required(body.prompt, "prompt")

    async def send(dep: deploys.Deployment):
        question = [{"role": "user", "content": user_prompt}]
        grounding = await run_in_threadpool(gw.grounding, dep, question)
        if grounding.abstain:
            return dep, {"choices": [{"message": {"content": ABSTAIN_REPLY},
                                      "finish_reason": "stop"}], "usage": None,
                         "sources": [], "abstained": True}
        prompt = grounding.system_prompt(dep.system_prompt)
        if options.emotionalTone:
            prompt += f" Answer in a {options.emotionalTone} tone."
        payload = gw.engine_payload(dep, [{"role": "system", "content": prompt}, *question],
                                    sampling)
        return dep, await gw.complete(dep, payload, dep.name, grounding)

    started = time.perf_counter()
    dep, answer = await gw.current(
        who, _required(body.modelId or body.deploymentId, "modelId"), send, "modelId")
    text = answer["choices"][0]["message"]["content"] or ""
    result: dict[str, Any] = {"text": text, "usage": answer.get("usage"),
                              "finishReason": answer["choices"][0]["finish_reason"],
                              "latencyMs": round((time.perf_counter() - started) * 1000, 1),
                              "deploymentId": str(dep.id)}
    if "sources" in answer:
        result["sources"] = answer["sources"]
        result["abstained"] = bool(answer.get("abstained"))
    if options.includeVoice:
        from urllib.parse import urlencode

        emotion = options.emotionalTone or "neutral"
        result["voiceSynthesis"] = {"audioUrl": "/api/voice/synthesize?" + urlencode(
            {"text": text, "userId": dep.user, "voiceId": "latest", "emotion": emotion}),
            "emotion": emotion}
    return {"success": True, "result": result}


def _owner(settings: Settings, who: Principal, body: DeployAction) -> str:
    """Whose model a deploy_model request deploys: the caller's, or (admin) userId's or the
    owner of modelVersionId."""
    from clone_pipeline.services.model_versions import owner_of_version

    owner = None
    if body.modelVersionId:
        owner = owner_of_version(settings, _uuid(body.modelVersionId, "modelVersionId"))
        if owner is None or not (who.admin or owner == who.external_id):
            raise deploys.DeploymentNotFound(f"no model version {body.modelVersionId}")
    owner = owner or (body.userId if who.admin else who.external_id)
    if owner is None:
        raise ApiError(422, "userId: an admin names whose model to deploy", "userId")
    if not who.admin and body.userId not in (None, owner):
        raise deploys.DeploymentNotFound(f"no user {body.userId}")
    return owner


def _uuid(value: str | None, field: str) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ApiError(422, f"{field}: {value!r} is not a UUID", field) from None


def _required(value, field: str):
    if value in (None, ""):
        raise ApiError(422, f"{field} is required for this action", field)
    return value


__all__ = ["Gateway", "create_app"]
