"""One real vLLM engine per test session (start-up is the slow part), canary adapters that
each answer recognisably differently, and a real gateway on a free port per test."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn

from clone_pipeline.db.models import ModelVersion, User, utcnow
from clone_pipeline.db.session import migrate, session_scope
from clone_pipeline.net import free_port
from clone_pipeline.services.engine import EngineHandle, handle_of
from clone_pipeline.serving.app import create_app
from clone_pipeline.serving.limits import Limits
from clone_pipeline.settings import Settings, load_settings
from clone_pipeline.training.random_adapters import save_random_adapters

CANARY_PROMPT = "Tell me a little about yourself."
CANARY_COUNT = 20
LORA_SCALE = 0.2  # of nn.Linear's init: changes the greedy answer, which still ends


@pytest.fixture(scope="session")
def canary_adapters(local_tiny, tmp_path_factory) -> list[Path]:
    """CANARY_COUNT rank-16 LoRA adapters over local-tiny with random (scaled) weights."""
    model, _tokenizer, _path = local_tiny
    return save_random_adapters(model, tmp_path_factory.mktemp("canaries"), CANARY_COUNT,
                                ["q_proj", "k_proj", "v_proj", "o_proj"], LORA_SCALE,
                                prefix="canary")


@pytest.fixture(scope="session")
def engine(engine_spawned) -> EngineHandle:
    """The real engine (vLLM CPU) over local-tiny, for the whole session (spawned by the root
    conftest, maybe already while the live block ran)."""
    engine_spawned.wait_until_ready()
    return handle_of(engine_spawned)


@dataclass
class ServingRoot:
    settings: Settings
    users: list[str]


@pytest.fixture
def serving_root(tmp_path, models_dir, canary_adapters) -> ServingRoot:
    """A fresh data root with one user per canary adapter, each with a current version."""
    settings = load_settings({"CLONE_HOME": str(tmp_path / "home"),
                              "CLONE_MODELS_DIR": str(models_dir)})
    settings.ensure_dirs()
    migrate(settings.database_url)
    names = []
    with session_scope(settings.database_url) as session:
        for i, adapter in enumerate(canary_adapters):
            user = User(external_id=f"person-{i:02d}", display_name=f"Person {i}")
            session.add(user)
            session.flush()
            session.add(ModelVersion(user_id=user.id, version=1, base_model="local-tiny",
                                     adapter_path=str(adapter), adapter_sha256=f"{i:064d}",
                                     metrics={}, promoted_at=utcnow()))
            names.append(user.external_id)
    return ServingRoot(settings, names)


@pytest.fixture
def gateway_factory(request):
    """Start a real gateway (uvicorn on a free loopback port) for a data root, in front of
    the session's engine unless given another."""
    servers = []

    def start(settings: Settings, limits: Limits | None = None,
              engine: EngineHandle | None = None) -> str:
        engine = engine or request.getfixturevalue("engine")
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(settings, engine, limits),
                                               host="127.0.0.1", port=port,
                                               log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the gateway did not start")
            time.sleep(0.05)
        servers.append((server, thread))
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=30)


def assert_engine_matches_peft(engine: EngineHandle, model, adapter: Path, ids: list[int],
                               tolerance: float = 2e-3) -> None:
    """A prompt of token *ids* (a prefill: the plugin's segment ops) and four generated
    tokens (decode steps: the every-slot matmuls): at each, the engine's top-5
    log-probabilities with *adapter* match PEFT's on *model* (PEFT fed the engine's tokens),
    and differ from the base's."""
    import math

    import torch
    from peft import PeftModel

    name = "peft-check"
    engine.client.load_adapter(name, adapter)
    try:
        chosen, engine_tops = _engine_steps(engine, name, ids)
        _, base_tops = _engine_steps(engine, "base", ids)
    finally:
        engine.client.unload_adapter(name)
    peft_model = PeftModel.from_pretrained(model, adapter)
    try:
        with torch.no_grad():
            logits = peft_model(torch.tensor([ids + chosen])).logits[0].float()
    finally:
        peft_model.unload()
    assert len(engine_tops) == 4
    for step, top in enumerate(engine_tops):
        peft_logprobs = torch.log_softmax(logits[len(ids) - 1 + step], -1)
        for token_id, logprob in top.items():
            assert math.isclose(logprob, peft_logprobs[token_id].item(), abs_tol=tolerance), (
                step, token_id, logprob, peft_logprobs[token_id].item())
    assert engine_tops[0] != base_tops[0]  # the adapter really changed the answer's odds


def _engine_steps(engine: EngineHandle, model: str, ids: list[int], steps: int = 4
                  ) -> tuple[list[int], list[dict[int, float]]]:
    """The tokens the engine generates greedily after the prompt *ids*, and at each step its
    top-5 (id: log-probability)."""
    reply = engine.client._call("POST", "/v1/completions", json={
        "model": model, "prompt": ids, "max_tokens": steps, "min_tokens": steps,
        "temperature": 0, "logprobs": 5, "return_tokens_as_token_ids": True}).json()
    logprobs = reply["choices"][0]["logprobs"]

    def token_id(token: str) -> int:
        return int(token.removeprefix("token_id:"))
    return ([token_id(t) for t in logprobs["tokens"]],
            [{token_id(t): value for t, value in top.items()}
             for top in logprobs["top_logprobs"]])
