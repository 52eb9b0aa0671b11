"""The published OpenAPI schema, fuzzed with schemathesis against a real gateway (uvicorn and
the real engine): valid and invalid requests to every operation, with a user token and with
an admin token. No request may crash the gateway (a 500), and every error is a JSON body that
says what went wrong. The Dagster webserver is deliberately not running: launches must answer
503 with what to start, not fail inside."""

from dataclasses import replace

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck

from clone_pipeline.net import free_port
from clone_pipeline.services.tokens import create_token

EXAMPLES = 12  # per operation, mode and token: about 1,000 requests in all


def _check(case, response) -> None:
    where = f"{case.method} {case.path} -> {response.status_code}"
    assert response.status_code != 500, f"{where}: {response.text[:500]}"
    if response.status_code >= 400:
        kind = response.headers.get("content-type") or [""]  # schemathesis: header -> list
        assert (kind[0] if isinstance(kind, list) else kind).startswith("application/json"), \
            where
        message = response.json()["error"]["message"]
        assert isinstance(message, str) and message.strip(), where


@pytest.mark.slow
def test_every_operation_answers_without_crashing_and_errors_say_why(
        serving_root, gateway_factory):
    settings = replace(serving_root.settings,  # no Dagster webserver listens there
                       dagster_url=f"http://127.0.0.1:{free_port()}")
    url = gateway_factory(settings)
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    tokens = [create_token(settings, serving_root.users[0])[0],
              create_token(settings, None, admin=True)[0]]
    http = requests.Session()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {"/api/training/workflow", "/api/training/progress", "/api/voice-llm/integrate",
            "/api/training/rtx5090-manager", "/api/training/gpu-manager",
            "/api/training/collect-data", "/api/training/format-data",
            "/api/training/analytics", "/v1/chat/completions"} <= {o.path for o in operations}
    calls = sum(_fuzz(operation, mode, url, http, token) for operation in operations
                for mode in schemathesis.GenerationMode for token in tokens)
    assert calls >= len(operations) * 2  # every operation really got requests


def _fuzz(operation, mode, url: str, http: requests.Session, token: str) -> int:
    """EXAMPLES generated requests to one operation; returns how many were sent."""
    sent = 0

    @hypothesis.settings(max_examples=EXAMPLES, deadline=None, database=None,
                         suppress_health_check=list(HealthCheck),
                         phases=[hypothesis.Phase.generate])
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def fuzz(case):
        nonlocal sent
        sent += 1
        response = case.call(base_url=url, session=http, timeout=120,
                             headers={"Authorization": f"Bearer {token}"})
        _check(case, response)

    try:
        fuzz()
    except hypothesis.errors.Unsatisfiable:
        assert mode == schemathesis.GenerationMode.NEGATIVE  # nothing to break: no inputs
    return sent
