"""Deployments: a user's model version served by the engine under an adapter name.

deploy, list, update, delete and restore, each used by the CLI, the HTTP API and the Dagster
`deployment` asset. A deployment's adapter is loaded into the engine and checked by a real
generation before it is marked active. An update loads the new adapter under a new name and
switches the row to it; the old name is unloaded (the engine never reloads weights under a
name it has served). Delete unloads at once and keeps the row, its logs and the version.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from clone_pipeline.data.formats import record_messages
from clone_pipeline.data.prompts import TemplateStyle, system_prompt
from clone_pipeline.data.store import read_jsonl
from clone_pipeline.db import deployments, training, users
from clone_pipeline.db.session import session_scope
from clone_pipeline.db.statuses import DeploymentStatus
from clone_pipeline.engine.client import EngineError
from clone_pipeline.memory.grounding import persona_prompt
from clone_pipeline.quantization import QUANTIZATIONS, Quantization
from clone_pipeline.services.engine import EngineHandle
from clone_pipeline.services.tokens import Principal
from clone_pipeline.settings import Settings

INFERENCE_TYPES = ("text", "voice_integrated")
OPTIMIZATION_KEYS = ("quantization", "caching", "batchProcessing", "memoryAllocation")
SMOKE_PROMPT = "Tell me a little about yourself."
SMOKE_TOKENS = 256  # a fluent base answers at a person's length (Margaret: about 110 tokens)
# Greedy answers of a 135M model can loop forever; a mild repetition penalty (vLLM's) lets
# the check judge whether the adapter ends its answers, not whether greedy decoding loops.
SMOKE_REPETITION_PENALTY = 1.1
# Pieces of the chat template that must never show up in a reply.
ROLE_TOKENS = re.compile(r"<\|[a-z_]+\|>|^(system|user|assistant)\s*\n", re.M)


class DeploymentError(ValueError):
    """A request the deployment service refuses; the message says what would work."""


class DeploymentNotFound(LookupError):
    """No such deployment for this caller (someone else's reads the same: no leak)."""


@dataclass(frozen=True)
class Deployment:
    id: uuid.UUID
    name: str
    user: str
    user_id: uuid.UUID
    model_version: int
    model_version_id: uuid.UUID
    base_model: str
    inference_type: str
    optimizations: dict[str, Any]
    status: str
    adapter_name: str | None
    adapter_sha256: str | None
    system_prompt: str
    error: str | None
    created_at: datetime
    updated_at: datetime
    display_name: str  # the person, as the family calls them (the chat page names them so)

    @property
    def caching(self) -> bool:
        return bool(self.optimizations.get("caching", True))

    def public(self) -> dict[str, Any]:
        """The API's view (no paths, no adapter internals)."""
        return {"id": str(self.id), "name": self.name, "userId": self.user,
                "modelVersion": self.model_version, "modelVersionId": str(self.model_version_id),
                "baseModel": self.base_model, "inferenceType": self.inference_type,
                "optimizations": self.optimizations, "status": self.status,
                "error": self.error, "createdAt": self.created_at.isoformat(),
                "updatedAt": self.updated_at.isoformat()}


def _record(row, version, external_id: str, display_name: str) -> Deployment:
    return Deployment(row.id, row.name, external_id, row.user_id, version.version, version.id,
                      version.base_model, row.inference_type, row.optimizations or {},
                      row.status, row.adapter_name, version.adapter_sha256,
                      (row.settings or {}).get("system_prompt", ""), row.error, row.created_at,
                      row.updated_at, display_name)


def check_optimizations(requested: dict[str, Any] | None, engine: EngineHandle
                        ) -> dict[str, Any]:
    """The seed's optimisation options, checked against what the engine runs.

    Quantisation and memory are the engine's (one base model in memory for every user), so a
    deployment can ask only for what the engine was started with; the refusal says how to
    start one that has it. Batching is always on: the engine batches every user's requests
    together. Caching turns the gateway's response cache on or off for the deployment.
    """
    requested = dict(requested or {})
    unknown = sorted(set(requested) - set(OPTIMIZATION_KEYS))
    if unknown:
        raise DeploymentError(f"optimizations: unknown option(s) {', '.join(unknown)}; known: "
                              f"{', '.join(OPTIMIZATION_KEYS)}")
    quantization = str(requested.get("quantization", engine.quantization) or Quantization.NONE)
    if quantization not in QUANTIZATIONS:
        raise DeploymentError(f"optimizations.quantization {quantization!r}: use one of "
                              f"{', '.join(QUANTIZATIONS)}")
    if quantization != engine.quantization:
        where = ("this engine runs on CPU, where vLLM has no 8-bit or 4-bit LoRA path: use "
                 "quantization none" if engine.device == "cpu" else
                 f"start a CUDA engine with `clone-pipeline serve --quantization "
                 f"{quantization}` (bitsandbytes) and deploy there")
        raise DeploymentError(f"optimizations.quantization {quantization}: the engine serves "
                              f"its base model with quantization {engine.quantization}; {where}")
    if requested.get("batchProcessing", True) is not True:
        raise DeploymentError("optimizations.batchProcessing false: the engine batches every "
                              "request continuously and cannot leave one deployment out")
    memory = {k: engine.spec[k] for k in ("kv_cache_gb", "gpu_memory_utilization")
              if k in engine.spec}
    if "memoryAllocation" in requested and requested["memoryAllocation"] != memory:
        raise DeploymentError(f"optimizations.memoryAllocation: the engine's is {memory}; it "
                              f"is set when the engine starts (clone-pipeline serve "
                              f"--kv-cache-gb / --gpu-memory-utilization)")
    caching = requested.get("caching", True)
    if not isinstance(caching, bool):
        raise DeploymentError("optimizations.caching must be true or false")
    return {"quantization": quantization, "caching": caching, "batchProcessing": True,
            "memoryAllocation": memory, "device": engine.device}


def deploy_model(settings: Settings, engine: EngineHandle, external_id: str, *,
                 version: int | None = None, model_version_id: uuid.UUID | None = None,
                 name: str | None = None, inference_type: str = "text",
                 optimizations: dict[str, Any] | None = None,
                 dagster_run_id: str | None = None, check: bool = True) -> Deployment:
    """Deploy one of *external_id*'s model versions (the current one unless *version* or
    *model_version_id* names another): load its adapter, check it generates, mark it active.
    A failed check leaves the row failed with the reason and the adapter unloaded.
    ``check=False`` skips the generation check: only for benchmarks over random-weight
    models, whose replies never reach the end token."""
    if inference_type not in INFERENCE_TYPES:
        raise DeploymentError(f"inferenceType {inference_type!r}: use one of "
                              f"{', '.join(INFERENCE_TYPES)}")
    checked = check_optimizations(optimizations, engine)
    with session_scope(settings.database_url) as session:
        user = users.get_user(session, external_id)
        row = _pick_version(session, user.id, external_id, version, model_version_id)
        if not engine.serves(row.base_model, settings.models_dir):
            raise DeploymentError(f"v{row.version} was trained on {row.base_model}; the engine "
                                  f"serves {engine.base_model} (one engine per base model)")
        if not row.adapter_path or not Path(row.adapter_path).is_dir():
            raise DeploymentError(f"v{row.version}'s adapter folder is missing "
                                  f"({row.adapter_path}); train the user again")
        prompt = _system_prompt(settings, row, user)
        dep_id = uuid.uuid4()
        dep = deployments.add(
            session, id=dep_id, user_id=user.id, model_version_id=row.id,
            name=name or f"{external_id}-v{row.version}", inference_type=inference_type,
            optimizations=checked, status=DeploymentStatus.DEPLOYING,
            engine=engine.base_model, adapter_name=adapter_name(dep_id, 1),
            settings={"system_prompt": prompt, "revision": 1}, dagster_run_id=dagster_run_id)
        adapter_path, adapter = row.adapter_path, dep.adapter_name
    return _activate(settings, engine, dep_id, adapter, adapter_path, prompt, check)


def adapter_name(deployment_id: uuid.UUID, revision: int) -> str:
    """The engine-side name: the deployment and a revision, nothing personal."""
    return f"d{deployment_id.hex[:16]}r{revision}"


def _pick_version(session, user_id, external_id, number, version_id):
    if version_id is not None:
        row = training.get_version(session, version_id)
        if row is None or row.user_id != user_id:
            raise DeploymentNotFound(f"{external_id} has no model version {version_id}")
        return row
    if number is not None:
        row = training.version_number(session, user_id, number)
        if row is None:
            raise DeploymentNotFound(f"{external_id} has no model version v{number} (see "
                                     f"clone-pipeline models {external_id})")
        return row
    row = training.current_version(session, user_id)
    if row is None:
        raise DeploymentError(f"{external_id} has no current model version yet: train and "
                              f"evaluate one (clone-pipeline run {external_id} --job "
                              f"train_and_deploy), or name a version")
    return row


def _system_prompt(settings: Settings, version, user) -> str:
    """The system message the version was trained and evaluated with (from its held-out
    file), else the person's default one."""
    evaluation = version.metrics.get("evaluation") or {}
    path = settings.home / evaluation["heldout_file"] if "heldout_file" in evaluation else None
    if path is not None and path.is_file():
        for record in read_jsonl(path):
            for message in record_messages(evaluation["format"], record):
                if message["role"] == "system":  # without the record's own memories
                    return persona_prompt(message["content"])
            break
    return system_prompt(user.display_name, user.persona or {}, user.birth_year,
                         TemplateStyle.LEGACY_PRESERVATION)


def _activate(settings: Settings, engine: EngineHandle, dep_id: uuid.UUID, adapter: str,
              adapter_path: str, prompt: str, check: bool = True) -> Deployment:
    try:
        engine.load(adapter, adapter_path)
        if check:
            smoke_check(engine, adapter, prompt)
    except (EngineError, DeploymentError) as exc:
        engine.unload(adapter)
        with session_scope(settings.database_url) as session:
            deployments.mark(session, dep_id, DeploymentStatus.FAILED, str(exc)[:2000])
        raise DeploymentError(f"deployment failed its check: {exc}") from exc
    with session_scope(settings.database_url) as session:
        deployments.mark(session, dep_id, DeploymentStatus.ACTIVE)
    return get_deployment(settings, dep_id)


def smoke_check(engine: EngineHandle, adapter: str, prompt: str) -> str:
    """Generate through the real engine with *adapter*: the reply must end at the template's
    end token (finish reason "stop") and carry no role tokens. Returns the reply."""
    answer = engine.client.chat({
        "model": adapter, "max_tokens": SMOKE_TOKENS, "temperature": 0,
        "repetition_penalty": SMOKE_REPETITION_PENALTY,
        "messages": [{"role": "system", "content": prompt},
                     {"role": "user", "content": SMOKE_PROMPT}]})
    choice = answer["choices"][0]
    text = choice["message"]["content"] or ""
    if choice["finish_reason"] != "stop":
        raise DeploymentError(f"the reply did not reach the end token within {SMOKE_TOKENS} "
                              f"tokens (finish reason {choice['finish_reason']})")
    if not text.strip():
        raise DeploymentError("the reply was empty")
    if ROLE_TOKENS.search(text):
        raise DeploymentError("the reply echoes chat-template role tokens")
    return text


def list_deployments(settings: Settings, principal: Principal | None = None,
                     external_id: str | None = None) -> list[Deployment]:
    """Live deployments the principal may see (all for an admin or None), optionally one
    user's."""
    with session_scope(settings.database_url) as session:
        user_id = users.user_id_of(session, external_id) if external_id else None
        if principal is not None and not principal.admin:
            if user_id is not None and user_id != principal.user_id:
                return []
            user_id = principal.user_id
        rows = deployments.live(session, user_id)
        return [_record(r, training.get_version(session, r.model_version_id),
                        *users.names_of(session, r.user_id)) for r in rows]


def get_deployment(settings: Settings, deployment_id: uuid.UUID | str,
                   principal: Principal | None = None) -> Deployment:
    """One live deployment by id or name, if the principal may see it (404 otherwise)."""
    with session_scope(settings.database_url) as session:
        found = deployments.resolve(session, str(deployment_id), None if principal is None
                                    or principal.admin else principal.user_id)
        if not found:
            raise DeploymentNotFound(f"no deployment {deployment_id}")
        if len(found) > 1:
            raise DeploymentError(f"{len(found)} deployments are named {deployment_id}: "
                                  f"use the deployment id")
        return _record(*found[0])


def update_deployment(settings: Settings, engine: EngineHandle, deployment_id: uuid.UUID | str,
                      principal: Principal | None = None, *, name: str | None = None,
                      version: int | None = None,
                      optimizations: dict[str, Any] | None = None,
                      inference_type: str | None = None) -> Deployment:
    """Change a deployment. A new model version is loaded under a new adapter name and
    checked before the row switches to it; requests keep going to the old one until then."""
    current = get_deployment(settings, deployment_id, principal)
    if inference_type is not None and inference_type not in INFERENCE_TYPES:
        raise DeploymentError(f"inferenceType {inference_type!r}: use one of "
                              f"{', '.join(INFERENCE_TYPES)}")
    merged = check_optimizations({**_requested(current.optimizations), **(optimizations or {})},
                                 engine)
    values: dict[str, Any] = {"optimizations": merged}
    if name:
        values["name"] = name
    if inference_type:
        values["inference_type"] = inference_type
    old_adapter = current.adapter_name
    if version is not None and version != current.model_version:
        with session_scope(settings.database_url) as session:
            user = users.get_user(session, current.user)
            row = _pick_version(session, user.id, current.user, version, None)
            prompt, path, version_id = _system_prompt(settings, row, user), row.adapter_path, row.id
            revision = (deployments.get(session, current.id).settings or {}).get("revision", 1) + 1
        new_adapter = adapter_name(current.id, revision)
        try:
            engine.load(new_adapter, path)
            smoke_check(engine, new_adapter, prompt)
        except (EngineError, DeploymentError) as exc:
            engine.unload(new_adapter)
            raise DeploymentError(f"v{version} failed its check; the deployment keeps "
                                  f"v{current.model_version}: {exc}") from exc
        values.update(model_version_id=version_id, adapter_name=new_adapter,
                      settings={"system_prompt": prompt, "revision": revision})
    with session_scope(settings.database_url) as session:
        deployments.mark(session, current.id, DeploymentStatus(current.status), current.error,
                         **values)
    if values.get("adapter_name") and old_adapter:
        engine.unload(old_adapter)
    return get_deployment(settings, current.id)


def _requested(optimizations: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in optimizations.items() if k in OPTIMIZATION_KEYS}


def delete_deployment(settings: Settings, engine: EngineHandle | None,
                      deployment_id: uuid.UUID | str,
                      principal: Principal | None = None) -> Deployment:
    """Stop serving at once: the row is marked deleted first (the gateway refuses it from the
    next request), then the adapter is unloaded. The row, its logs and the version stay."""
    current = get_deployment(settings, deployment_id, principal)
    with session_scope(settings.database_url) as session:
        deployments.mark(session, current.id, DeploymentStatus.STOPPED)
    if engine is not None and current.adapter_name:
        engine.unload(current.adapter_name)
    with session_scope(settings.database_url) as session:
        row = deployments.get(session, current.id)
        return _record(row, training.get_version(session, row.model_version_id), current.user,
                       current.display_name)


def restore_deployments(settings: Settings, engine: EngineHandle,
                        fresh_engine: bool = False) -> tuple[int, list[str]]:
    """Load the adapter of every active deployment into *engine* (after a restart); returns
    how many were restored and why the others were not (they are marked failed).

    With *fresh_engine* (one this process just started, so nobody else can be deploying into
    it), deployments left ``deploying`` by a process that stopped are marked failed, saying
    so, instead of answering 409 forever; deploy them again."""
    with session_scope(settings.database_url) as session:
        if fresh_engine:
            for row in deployments.interrupted(session):
                deployments.mark(session, row.id, DeploymentStatus.FAILED,
                                 "interrupted while deploying (its process stopped): deploy "
                                 "it again")
        wanted = [(d.id, d.adapter_name, v.adapter_path, v.base_model)
                  for d, v in deployments.active(session)]
    restored, problems = 0, []
    for dep_id, adapter, path, base in wanted:
        try:
            if not engine.serves(base, settings.models_dir):
                raise DeploymentError(f"trained on {base}, the engine serves "
                                      f"{engine.base_model}")
            engine.load(adapter, path)
            restored += 1
        except (EngineError, DeploymentError) as exc:
            problems.append(f"{dep_id}: {exc}")
            with session_scope(settings.database_url) as session:
                deployments.mark(session, dep_id, DeploymentStatus.FAILED,
                                 f"not restored: {exc}"[:2000])
    return restored, problems


def record_inference(settings: Settings, logs: list[dict[str, Any]]) -> None:
    """Write inference_logs rows (usage figures only, never text)."""
    if logs:
        with session_scope(settings.database_url) as session:
            deployments.add_logs(session, logs)


def version_base_model(settings: Settings, external_id: str, number: int) -> str:
    """The base model version *number* of the user was trained on."""
    with session_scope(settings.database_url) as session:
        user_id = users.user_id_of(session, external_id)
        return _pick_version(session, user_id, external_id, number, None).base_model
