"""The gateway against the real engine: OpenAI-compatible chat (the official client too),
ownership, the seed's deploy actions, caching and usage logs."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from clone_pipeline.db import deployments as deployment_rows
from clone_pipeline.db.session import session_scope
from clone_pipeline.services import deployments, tokens

pytestmark = pytest.mark.slow


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def two_users(serving_root, engine, gateway_factory):
    settings = serving_root.settings
    a, b = serving_root.users[:2]
    dep_a = deployments.deploy_model(settings, engine, a)
    dep_b = deployments.deploy_model(settings, engine, b)
    token_a, _ = tokens.create_token(settings, a)
    token_b, _ = tokens.create_token(settings, b)
    admin, _ = tokens.create_token(settings, None, admin=True)
    url = gateway_factory(settings)
    return settings, url, (dep_a, token_a), (dep_b, token_b), admin


def test_official_openai_client_lists_only_own_models_and_streams_one_done(two_users):
    from openai import OpenAI

    _settings, url, (dep_a, token_a), (dep_b, _), _admin = two_users
    client = OpenAI(base_url=f"{url}/v1", api_key=token_a)
    assert [m.id for m in client.models.list().data] == [dep_a.name]
    answer = client.chat.completions.create(
        model=dep_a.name, messages=[{"role": "user", "content": "Hello there"}],
        max_tokens=24, temperature=0, seed=7)
    assert answer.choices[0].message.content
    assert answer.model == dep_a.name
    assert answer.usage.completion_tokens > 0
    chunks = list(client.chat.completions.create(
        model=dep_a.name, messages=[{"role": "user", "content": "Hello there"}],
        max_tokens=16, temperature=0, stream=True, stream_options={"include_usage": True}))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == answer.choices[0].message.content[:len(streamed)]
    assert chunks[-1].usage is not None and not chunks[-1].choices
    raw = httpx.post(f"{url}/v1/chat/completions", headers=_auth(token_a), json={
        "model": dep_a.name, "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 8, "stream": True}).text
    assert raw.count("data: [DONE]") == 1 and raw.rstrip().endswith("data: [DONE]")
    assert '"usage"' not in raw  # not asked for


def test_someone_elses_deployment_reads_as_not_found_and_admin_sees_all(two_users):
    _settings, url, (dep_a, token_a), (dep_b, token_b), admin = two_users
    body = {"model": dep_b.name, "messages": [{"role": "user", "content": "Hi"}],
            "max_tokens": 4}
    theirs = httpx.post(f"{url}/v1/chat/completions", headers=_auth(token_a), json=body)
    nobody = httpx.post(f"{url}/v1/chat/completions", headers=_auth(token_a),
                        json={**body, "model": "nobody-v1"})
    assert theirs.status_code == nobody.status_code == 404
    # the same words as for one that does not exist, and where to look instead
    said = [r.json()["error"]["message"].replace(m, "X")
            for r, m in ((theirs, dep_b.name), (nobody, "nobody-v1"))]
    assert said[0] == said[1] and "GET /v1/models" in said[0]
    by_id = {**body, "model": str(dep_b.id)}
    assert httpx.post(f"{url}/v1/chat/completions", headers=_auth(token_a),
                      json=by_id).status_code == 404
    assert httpx.post(f"{url}/v1/chat/completions", headers=_auth(token_b),
                      json=body).status_code == 200
    seen = httpx.get(f"{url}/v1/models", headers=_auth(admin)).json()["data"]
    assert {m["id"] for m in seen} == {dep_a.name, dep_b.name}


def test_deterministic_answer_is_cached_per_user_and_logged_without_text(two_users):
    settings, url, (dep_a, token_a), _b, _admin = two_users
    body = {"model": dep_a.name, "messages": [{"role": "user", "content": "Say hello"}],
            "max_tokens": 12, "temperature": 0}
    first = httpx.post(f"{url}/v1/chat/completions", headers=_auth(token_a), json=body).json()
    second = httpx.post(f"{url}/v1/chat/completions", headers=_auth(token_a), json=body).json()
    assert first["choices"] == second["choices"]
    sampled = {**body, "temperature": 0.9}
    httpx.post(f"{url}/v1/chat/completions", headers=_auth(token_a), json=sampled)
    httpx.post(f"{url}/v1/chat/completions", headers=_auth(token_a), json=sampled)
    import time

    deadline = time.monotonic() + 10
    while True:
        with session_scope(settings.database_url) as session:
            logs = deployment_rows.logs_of(session, dep_a.id)
            rows = [(r.cached, r.status, r.completion_tokens, r.latency_ms) for r in logs]
        if len(rows) >= 4 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert [cached for cached, *_ in rows] == [False, True, False, False]
    assert all(status == "ok" and tokens_out and latency for _, status, tokens_out, latency
               in rows)


def test_seed_deploy_actions_round_trip(two_users, engine):
    settings, url, (dep_a, token_a), (dep_b, _), _admin = two_users
    post = lambda body: httpx.post(f"{url}/api/training/deploy",  # noqa: E731
                                   headers=_auth(token_a), json=body, timeout=120)
    listed = post({"action": "get_deployments"}).json()
    assert [d["id"] for d in listed["deployments"]] == [str(dep_a.id)]
    answer = post({"action": "inference", "modelId": str(dep_a.id),
                   "prompt": "Tell me about your childhood memories",
                   "options": {"maxTokens": 20, "temperature": 0, "emotionalTone": "warm",
                               "includeVoice": True}}).json()
    assert answer["success"] and answer["result"]["text"]
    assert answer["result"]["voiceSynthesis"]["audioUrl"].startswith("/api/voice/synthesize?")
    assert "emotion=warm" in answer["result"]["voiceSynthesis"]["audioUrl"]
    renamed = post({"action": "update_deployment", "deploymentId": str(dep_a.id),
                    "updates": {"deploymentName": "production_v1"}}).json()
    assert renamed["deployment"]["name"] == "production_v1"
    refused = post({"action": "deploy_model", "deploymentName": "x",
                    "optimizations": {"quantization": "4bit"}})
    assert refused.status_code == 422 and "quantization" in refused.json()["error"]["message"]
    assert post({"action": "delete_deployment",
                 "deploymentId": str(dep_b.id)}).status_code == 404
    gone = post({"action": "delete_deployment", "deploymentId": str(dep_a.id)}).json()
    assert gone["deployment"]["status"] == "stopped"
    assert post({"action": "inference", "modelId": str(dep_a.id),
                 "prompt": "Hello"}).status_code == 404
    assert dep_a.adapter_name not in engine.client.model_names()  # unloaded at once


def test_bad_requests_get_422_naming_the_field(two_users):
    _settings, url, (dep_a, token_a), _b, _admin = two_users
    cases = {
        "messages": {"model": dep_a.name, "messages": []},
        "temperature": {"model": dep_a.name, "messages": [{"role": "user", "content": "x"}],
                        "temperature": 5},
        "max_tokens": {"model": dep_a.name, "messages": [{"role": "user", "content": "x"}],
                       "max_tokens": 100_000},
        "messages.0.content": {"model": dep_a.name,
                               "messages": [{"role": "user", "content": "x" * 20_000}]},
    }
    for field, body in cases.items():
        response = httpx.post(f"{url}/v1/chat/completions", headers=_auth(token_a), json=body)
        assert response.status_code == 422, field
        assert response.json()["error"]["param"] == field
    broken = httpx.post(f"{url}/v1/chat/completions", headers={
        **_auth(token_a), "Content-Type": "application/json"}, content=b"{not json")
    assert broken.status_code == 422 and "JSON" in broken.json()["error"]["message"]
    huge = httpx.post(f"{url}/v1/chat/completions", headers=_auth(token_a),
                      json={"model": dep_a.name, "messages": [
                          {"role": "user", "content": "x" * 1_100_000}]})
    assert huge.status_code == 413 and "over 1048576 bytes" in huge.json()["error"]["message"]
    anonymous = httpx.post(f"{url}/v1/chat/completions", json=cases["messages"])
    assert anonymous.status_code == 401  # no token: refused before the body is judged


def test_min_tokens_reaches_the_engine_for_fixed_length_answers(two_users):
    _settings, url, (dep_a, token_a), _b, _admin = two_users
    # The deployment check saw this prompt's greedy reply end within SMOKE_TOKENS.
    body = {"model": dep_a.name, "temperature": 0, "max_tokens": deployments.SMOKE_TOKENS,
            "min_tokens": deployments.SMOKE_TOKENS,
            "messages": [{"role": "user", "content": deployments.SMOKE_PROMPT}]}
    answer = httpx.post(f"{url}/v1/chat/completions", headers=_auth(token_a), json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["usage"]["completion_tokens"] == deployments.SMOKE_TOKENS


def test_a_replica_that_never_loaded_an_adapter_resolves_it_and_a_delete_withdraws_it(
        two_users, engine, monkeypatch):
    """A fleet behind one Service: the deploy reached one replica. Unloading the adapter
    here stands for another replica that never had it: the gateway's next request still
    answers (vLLM's filesystem resolver loads it from the published folder)."""
    settings, url, (dep_a, token_a), _, _admin = two_users
    body = {"model": dep_a.name, "messages": [{"role": "user", "content": "Hello there"}],
            "max_tokens": 12, "temperature": 0}
    before = httpx.post(f"{url}/v1/chat/completions", headers=_auth(token_a), json=body)
    published = Path(engine.spec["lora_dir"]) / dep_a.adapter_name
    assert (published / "adapter_model.safetensors").is_symlink()
    assert json.loads((published / "adapter_config.json").read_text())[
        "base_model_name_or_path"] == engine.base_model

    engine.client.unload_adapter(dep_a.adapter_name)
    assert dep_a.adapter_name not in engine.client.model_names()
    after = httpx.post(f"{url}/v1/chat/completions", headers=_auth(token_a),
                       json={**body, "messages": [{"role": "user", "content": "Hello, there"}]})
    assert after.status_code == 200, after.text  # not the cached answer: a new prompt
    assert dep_a.adapter_name in engine.client.model_names()  # resolved on first use
    again = httpx.post(f"{url}/v1/chat/completions", headers=_auth(token_a), json={
        **body, "messages": [{"role": "user", "content": "Hello there"}], "seed": 3})
    assert again.json()["choices"][0]["message"]["content"] == \
        before.json()["choices"][0]["message"]["content"]  # the same adapter's answer

    # The folder goes before the engine lets go: a request racing the delete gets a 404
    # (and a fresh look), never a resolver reloading from a folder being removed.
    seen = []
    unload = engine.client.unload_adapter
    monkeypatch.setattr(engine.client, "unload_adapter",
                        lambda name: (seen.append(published.exists()), unload(name)))
    deployments.delete_deployment(settings, engine, dep_a.id)
    assert seen == [False]
    assert not published.exists()
    assert dep_a.adapter_name not in engine.client.model_names()


def test_a_published_adapter_a_replica_cannot_load_is_looked_up_again_then_reported(
        two_users, engine):
    """Not a 404 (the deployment exists) nor the caller's fault: the gateway asks twice (a
    resolver may have lost a race with a withdraw), then answers 502 with the engine's
    reason."""
    settings, url, (dep_a, token_a), _, _admin = two_users
    published = Path(engine.spec["lora_dir"]) / dep_a.adapter_name
    engine.client.unload_adapter(dep_a.adapter_name)  # a replica that never loaded it
    (published / "adapter_model.safetensors").unlink()
    (published / "adapter_model.safetensors").write_bytes(b"not a safetensors file")
    log = Path(engine.spec["lora_dir"]).parent / "engine.log"
    failed_loads = f"Failed to load LoRA '{dep_a.adapter_name}'"
    before = log.read_text().count(failed_loads)

    reply = httpx.post(f"{url}/v1/chat/completions", headers=_auth(token_a), json={
        "model": dep_a.name, "messages": [{"role": "user", "content": "Hello"}],
        "max_tokens": 4})
    assert reply.status_code == 502, reply.text
    error = reply.json()["error"]
    assert error["type"] == "engine_error" and error["param"] == "model"
    assert "could not be loaded" in error["message"]
    assert log.read_text().count(failed_loads) - before == 2  # the first try and the look again
