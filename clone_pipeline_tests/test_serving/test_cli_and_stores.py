"""The serving commands as a user runs them (subprocesses against the real engine), the
domain rows on PostgreSQL, and the Redis response cache."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import httpx
import pytest

from clone_pipeline.db.models import ModelVersion, User, utcnow
from clone_pipeline.db.session import migrate, session_scope
from clone_pipeline.net import free_port
from clone_pipeline.services import deployments, tokens
from clone_pipeline.settings import load_settings

pytestmark = pytest.mark.slow


def _cli_env(settings, engine) -> dict[str, str]:
    return {**os.environ, "CLONE_HOME": str(settings.home),
            "CLONE_MODELS_DIR": str(settings.models_dir),
            "DAGSTER_HOME": str(settings.dagster_home),
            "CLONE_ENGINE_URL": engine.client.base_url,
            "CLONE_ENGINE_KEY": engine.client.headers["Authorization"][7:]}


def _cli(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "clone_pipeline.cli", *args], env=env,
                          capture_output=True, text=True, timeout=300)


def test_serve_restores_deployments_and_the_cli_deploys_lists_chats_and_undeploys(
        serving_root, engine):
    settings = serving_root.settings
    env = _cli_env(settings, engine)
    assert _cli(env, "init").returncode == 0
    deployed = _cli(env, "deploy", "person-06", "--name", "grandma")
    assert deployed.returncode == 0, deployed.stderr
    assert "grandma" in deployed.stdout and "active" in deployed.stdout
    token = _cli(env, "token", "create", "person-06").stdout.strip()
    assert token.startswith("cpk_")
    engine.client.unload_adapter(deployments.list_deployments(settings)[0].adapter_name)

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "clone_pipeline.cli", "serve", "--port",
                               str(port)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        for line in server.stdout:  # serve says when it restored and when it listens
            if "gateway on" in line:
                break
            assert "not restored" not in line, line
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and server.poll() is None
            time.sleep(0.1)
        chat = _cli(env, "chat", "--url", url, "--model", "grandma", "--token", token,
                    "--max-tokens", "8", "Hello")
        assert chat.returncode == 0 and chat.stdout.strip(), chat.stderr
        listed = _cli(env, "deployments", "--json")
        assert '"grandma"' in listed.stdout
        assert _cli(env, "undeploy", "grandma").returncode == 0
        refused = _cli(env, "chat", "--url", url, "--model", "grandma", "--token", token,
                       "Hello")
        assert refused.returncode != 0 and "404" in refused.stderr
        prefix = token[:12]
        assert _cli(env, "token", "revoke", prefix).returncode == 0
        assert httpx.get(f"{url}/v1/models",
                         headers={"Authorization": f"Bearer {token}"}).status_code == 401
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        assert server.wait(timeout=30) is not None


def test_deployments_tokens_and_logs_on_postgres(pg_database, models_dir, tmp_path,
                                                 canary_adapters, engine, gateway_factory):
    settings = load_settings({"CLONE_HOME": str(tmp_path / "home"),
                              "CLONE_MODELS_DIR": str(models_dir),
                              "CLONE_DATABASE_URL": pg_database})
    settings.ensure_dirs()
    migrate(settings.database_url)
    with session_scope(settings.database_url) as session:
        user = User(external_id="pg-person", display_name="Pg Person")
        session.add(user)
        session.flush()
        session.add(ModelVersion(user_id=user.id, version=1, base_model="local-tiny",
                                 adapter_path=str(canary_adapters[7]), adapter_sha256="7" * 64,
                                 metrics={}, promoted_at=utcnow()))
    dep = deployments.deploy_model(settings, engine, "pg-person")
    token, _ = tokens.create_token(settings, "pg-person", expires_in_days=1)
    url = gateway_factory(settings)
    answer = httpx.post(f"{url}/v1/chat/completions",
                        headers={"Authorization": f"Bearer {token}"},
                        json={"model": dep.name, "max_tokens": 6,
                              "messages": [{"role": "user", "content": "Hi"}]})
    assert answer.status_code == 200
    deployments.delete_deployment(settings, engine, dep.id)
    from clone_pipeline.db import deployments as rows

    deadline = time.monotonic() + 10
    while True:
        with session_scope(settings.database_url) as session:
            logs = rows.logs_of(session, dep.id)
            kept = rows.get(session, dep.id)
            if logs or time.monotonic() > deadline:
                break
        time.sleep(0.1)
    assert len(logs) == 1 and logs[0].completion_tokens and kept.deleted_at is not None


def test_redis_cache_serves_a_repeated_deterministic_answer(serving_root, engine,
                                                            gateway_factory):
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url("redis://127.0.0.1:6379/15")
    try:
        client.ping()
    except redis.ConnectionError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no Redis at 127.0.0.1:6379: {exc}")
    client.flushdb()
    settings = replace(serving_root.settings, cache_url="redis://127.0.0.1:6379/15")
    dep = deployments.deploy_model(settings, engine, "person-08")
    token, _ = tokens.create_token(settings, "person-08")
    url = gateway_factory(settings)
    body = {"model": dep.name, "max_tokens": 8, "temperature": 0,
            "messages": [{"role": "user", "content": "Hello"}]}
    auth = {"Authorization": f"Bearer {token}"}
    first = httpx.post(f"{url}/v1/chat/completions", headers=auth, json=body).json()
    assert len(client.keys("clone:answer:*")) == 1
    again = httpx.post(f"{url}/v1/chat/completions", headers=auth, json=body).json()
    assert again["choices"] == first["choices"]
    client.flushdb()
