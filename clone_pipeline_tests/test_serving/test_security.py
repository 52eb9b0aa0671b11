"""Who gets in, against the real gateway and engine: no, bad, revoked, expired or someone
else's token is refused on every route; the engine's own port needs its key; a token over its
rate gets 429 with Retry-After; a request over the time limit gets 504."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from clone_pipeline.db.models import ApiToken, utcnow
from clone_pipeline.db.session import session_scope
from clone_pipeline.engine.process import EngineSpec, engine_command
from clone_pipeline.services import deployments, tokens
from clone_pipeline.serving.app import STATIC
from clone_pipeline.serving.limits import Limits

pytestmark = pytest.mark.slow

HELLO = [{"role": "user", "content": "Hello"}]
# Sampled at temperature 2 the tiny model does not reach its end token for hundreds of tokens.
LONG = {"max_tokens": 900, "temperature": 2.0, "seed": 1}


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def routes(dep, owner: str) -> dict[str, tuple[str, str, dict]]:
    """Every authenticated route (each deploy action apart), aimed at *owner*'s deployment."""
    deploy = "/api/training/deploy"
    return {
        "models": ("GET", "/v1/models", {}),
        "chat": ("POST", "/v1/chat/completions",
                 {"json": {"model": dep.name, "messages": HELLO, "max_tokens": 4}}),
        "get_deployments": ("POST", deploy, {"json": {"action": "get_deployments",
                                                      "userId": owner}}),
        "deploy_model": ("POST", deploy, {"json": {"action": "deploy_model", "userId": owner,
                                                   "deploymentName": "stolen"}}),
        "deploy_version": ("POST", deploy, {"json": {"action": "deploy_model",
                                                     "modelVersionId": str(
                                                         dep.model_version_id)}}),
        "update_deployment": ("POST", deploy, {"json": {
            "action": "update_deployment", "deploymentId": str(dep.id),
            "updates": {"deploymentName": "renamed"}}}),
        "delete_deployment": ("POST", deploy, {"json": {"action": "delete_deployment",
                                                        "deploymentId": str(dep.id)}}),
        "inference": ("POST", deploy, {"json": {"action": "inference", "modelId": str(dep.id),
                                                "prompt": "Hello",
                                                "options": {"maxTokens": 4}}}),
        "voice": ("GET", "/api/voice/synthesize", {"params": {"text": "Hello",
                                                              "userId": owner}}),
    }


@pytest.fixture
def victim(serving_root, engine, gateway_factory):
    """person-00's deployment and token, person-01's token, and a gateway."""
    settings = serving_root.settings
    owner, other = serving_root.users[:2]
    dep = deployments.deploy_model(settings, engine, owner)
    token, _ = tokens.create_token(settings, owner)
    others, _ = tokens.create_token(settings, other)
    return settings, gateway_factory(settings), dep, owner, token, others


def test_every_route_refuses_a_missing_malformed_revoked_or_expired_token(victim):
    settings, url, dep, owner, token, _others = victim
    revoked, revoked_info = tokens.create_token(settings, owner)
    expired, expired_info = tokens.create_token(settings, owner, expires_in_days=1)
    with httpx.Client(base_url=url, timeout=60) as http:
        for works in (revoked, expired):  # both work until revoked or expired
            assert http.get("/v1/models", headers=_auth(works)).status_code == 200
        assert tokens.revoke_token(settings, str(revoked_info.id)) == 1
        with session_scope(settings.database_url) as session:
            session.get(ApiToken, expired_info.id).expires_at = utcnow() - timedelta(minutes=1)
        headers = {
            "no header": {},
            "other scheme": {"Authorization": f"Token {token}"},
            "scheme only": {"Authorization": "Bearer"},
            "no scheme": {"Authorization": token},
            "basic scheme": {"Authorization": f"Basic {token}"},
            "truncated": _auth(token[:-1]),
            "trailing garbage": {"Authorization": f"Bearer {token} x"},
            "unknown": _auth(tokens.TOKEN_PREFIX + "x" * 43),
            "oversized": _auth(tokens.TOKEN_PREFIX + "x" * 300),
            "revoked": _auth(revoked),
            "expired": _auth(expired),
        }
        refused = {}
        for case, header in headers.items():
            for route, (method, path, kwargs) in routes(dep, owner).items():
                reply = http.request(method, path, headers=header, **kwargs)
                refused[case, route] = (reply.status_code,
                                        reply.headers.get("www-authenticate"),
                                        reply.json()["error"]["type"])
        assert {k: v for k, v in refused.items()
                if v != (401, "Bearer", "authentication_error")} == {}
        assert http.get("/v1/models", headers=_auth(token)).json()["data"][0]["id"] == dep.name
        for path in ("/healthz", "/readyz"):  # open to all
            assert http.get(path).status_code == 200, path
    unchanged = deployments.get_deployment(settings, dep.id)
    assert (unchanged.name, unchanged.status) == (dep.name, "active")


@pytest.mark.skipif(not (STATIC / "chat.html").is_file(), reason="no chat page in this tree")
def test_the_chat_page_is_open_without_a_token(victim):
    _settings, url, *_ = victim
    for path in ("/", "/chat"):  # the page asks for the token itself
        assert httpx.get(f"{url}{path}").status_code == 200, path


def test_someone_elses_token_finds_nothing_of_theirs_on_any_route(victim):
    settings, url, dep, owner, _token, others = victim
    with httpx.Client(base_url=url, headers=_auth(others), timeout=60) as http:
        replies = {route: http.request(method, path, **kwargs)
                   for route, (method, path, kwargs) in routes(dep, owner).items()}
    listed = {route: replies.pop(route).json() for route in ("models", "get_deployments")}
    assert listed["models"]["data"] == []
    assert listed["get_deployments"] == {"success": True, "deployments": []}
    assert {route: r.status_code for route, r in replies.items()} == dict.fromkeys(replies, 404)
    unchanged = deployments.get_deployment(settings, dep.id)
    assert (unchanged.name, unchanged.status) == (dep.name, "active")
    assert [d.id for d in deployments.list_deployments(settings)] == [dep.id]


def test_the_engine_port_refuses_requests_without_its_key(engine):
    base = engine.client.base_url
    for headers in ({}, {"Authorization": "Bearer not-the-key"}):
        assert httpx.get(f"{base}/v1/models", headers=headers).status_code == 401
        assert httpx.post(f"{base}/v1/chat/completions", headers=headers, json={
            "model": "base", "messages": HELLO, "max_tokens": 4}).status_code == 401
        assert httpx.post(f"{base}/v1/load_lora_adapter", headers=headers, json={
            "lora_name": "x", "lora_path": "/tmp"}).status_code == 401
    assert httpx.get(f"{base}/v1/models", headers=engine.client.headers).status_code == 200


def test_the_engine_key_stays_off_its_command_line_where_any_local_user_could_read_it(
        engine, tmp_path):
    """The running engine's processes (ps shows their arguments to everyone) and the command
    for a key that starts with "-" (an option, to vLLM's parser)."""
    import psutil

    key = engine.client.headers["Authorization"].removeprefix("Bearer ")
    port = engine.client.base_url.rsplit(":", 1)[1]
    lines = [" ".join(p.info["cmdline"] or []) for p in psutil.process_iter(["cmdline"])]
    assert any("vllm" in line and f"--port {port}" in line for line in lines)
    assert not any(key in line for line in lines)
    cmd, env = engine_command(EngineSpec("/models/base"), Path("python"), 8001, "-dash-key",
                              cuda=False)
    assert "-dash-key" not in cmd and env["VLLM_API_KEY"] == "-dash-key"


def test_a_token_over_its_rate_gets_429_with_retry_after(victim, gateway_factory):
    settings, _url, _dep, _owner, token, others = victim
    url = gateway_factory(settings, Limits(rate_per_minute=3))
    with httpx.Client(base_url=url, timeout=60) as http:
        codes = [http.get("/v1/models", headers=_auth(token)) for _ in range(4)]
        assert [r.status_code for r in codes] == [200, 200, 200, 429]
        assert codes[-1].json()["error"]["type"] == "rate_limit_error"
        assert 1 <= int(codes[-1].headers["retry-after"]) <= 20
        assert http.get("/v1/models", headers=_auth(others)).status_code == 200  # per token


def test_a_request_over_the_time_limit_gets_504_and_its_generation_stops(victim, engine,
                                                                         gateway_factory):
    settings, _url, dep, _owner, token, _others = victim
    url = gateway_factory(settings, Limits(request_timeout_s=0.5))
    body = {"model": dep.name, "messages": HELLO, **LONG}
    started = time.perf_counter()
    reply = httpx.post(f"{url}/v1/chat/completions", headers=_auth(token), json=body,
                       timeout=60)
    assert reply.status_code == 504, reply.text
    assert reply.json()["error"]["type"] == "timeout_error"
    assert time.perf_counter() - started < 10
    streamed = httpx.post(f"{url}/v1/chat/completions", headers=_auth(token),
                          json={**body, "stream": True}, timeout=60).text
    assert '"timeout_error"' in streamed and streamed.rstrip().endswith("data: [DONE]")
    deadline = time.monotonic() + 10
    while engine.client.running_requests():  # the gateway let go, so the engine stops
        assert time.monotonic() < deadline, "the engine still generates for a timed-out request"
        time.sleep(0.05)
