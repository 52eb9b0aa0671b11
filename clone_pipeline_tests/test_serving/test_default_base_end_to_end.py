"""The product's default base end to end: complete_workflow trains an adapter on
SmolLM2-135M-Instruct (a few steps), evaluates it, deploys it onto a real vLLM engine serving
that base, and the gateway answers a family's question with it, in words."""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg
import httpx
import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from clone_pipeline.db.models import ModelVersion
from clone_pipeline.db.session import session_scope
from clone_pipeline.demo import PERSONAS_DIR
from clone_pipeline.launch.launch import run_job_for_user
from clone_pipeline.services.deployments import list_deployments
from clone_pipeline.services.engine import handle_of
from clone_pipeline.services.evaluation import latest_evaluation
from clone_pipeline.services.ingest import import_export
from clone_pipeline.services.tokens import create_token
from clone_pipeline.training.base_models import PRODUCT_DEFAULT
from clone_pipeline_tests.test_serving.conftest import assert_engine_matches_peft

pytestmark = pytest.mark.slow
USER = "walter-okafor"
CONFIG = {"ops": {
    "formatted_datasets": {"config": {"tokenizer": PRODUCT_DEFAULT}},
    # Enough steps to learn Walter's short answers: the base alone tells a story of about
    # 500 tokens to the smoke check's prompt, past its 256. Two 256-token sequences a step at
    # 3e-3 learn it (his answers are short) in a quarter of the tokens of 4 x 512 at 2e-3.
    "trained_adapter": {"config": {"base_model": PRODUCT_DEFAULT, "max_steps": 8,
                                   "batch_size": 2, "context_length": 256,
                                   "learning_rate": 3e-3, "eval_steps": 8,
                                   "min_free_disk_gb": 0.1}},
    "deployment": {"config": {"auto_deploy": True}}},
    "loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@pytest.fixture
def smollm2_engine(smollm2_engine_spawned):
    smollm2_engine_spawned.wait_until_ready()
    yield handle_of(smollm2_engine_spawned)
    smollm2_engine_spawned.stop()  # no later test uses it: its memory back at once


def test_an_adapter_trained_on_the_default_base_is_evaluated_deployed_and_answers_in_words(
        sqlite_settings, smollm2, smollm2_engine, gateway_factory, monkeypatch):
    settings = sqlite_settings
    for name, value in {"CLONE_HOME": str(settings.home),
                        "CLONE_DATABASE_URL": settings.database_url,
                        "CLONE_MODELS_DIR": str(settings.models_dir),
                        "DAGSTER_HOME": str(settings.dagster_home),
                        "CLONE_ENGINE_URL": smollm2_engine.client.base_url,
                        "CLONE_ENGINE_KEY":
                            smollm2_engine.client.headers["Authorization"][7:]}.items():
        monkeypatch.setenv(name, value)
    import_export(PERSONAS_DIR / USER, settings)
    with dg.instance_for_test() as instance:
        outcome = run_job_for_user(instance, "complete_workflow", USER, CONFIG)
    assert outcome.success, outcome.error
    assert {"trained_adapter", "model_evaluation", "deployment"} <= set(outcome.materialized)

    evaluation = latest_evaluation(settings, USER)
    assert evaluation["base_model"] == PRODUCT_DEFAULT
    assert evaluation["adapter_perplexity"] < evaluation["base_perplexity"]
    [deployment] = [d for d in list_deployments(settings, external_id=USER)
                    if d.status == "active"]

    url = gateway_factory(settings, engine=smollm2_engine)
    token, _ = create_token(settings, USER, name="family", expires_in_days=1)
    response = httpx.post(f"{url}/v1/chat/completions", timeout=120,
                          headers={"Authorization": f"Bearer {token}"},
                          json={"model": deployment.name, "max_tokens": 40, "temperature": 0,
                                "messages": [{"role": "user",
                                              "content": "What was your first job?"}]})
    assert response.status_code == 200, response.text
    answer = response.json()["choices"][0]["message"]["content"]
    words = re.findall(r"[A-Za-z']+", answer)
    # A fluent base writes words, not the toy base's fragments or special tokens.
    assert len(words) >= 8 and "<|" not in answer, answer
    assert sum(w.lower() in {"i", "the", "a", "my", "and", "was", "to", "of"}
               for w in words) >= 2, answer

    # The engine plugin's LoRA ops on this model (30 layers, grouped-query attention, the
    # trainer's all-linear adapter) give PEFT's log-probabilities, prefill and decode.
    with session_scope(settings.database_url) as session:
        adapter = Path(session.get(ModelVersion, deployment.model_version_id).adapter_path)
    tokenizer = AutoTokenizer.from_pretrained(smollm2, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(smollm2, local_files_only=True).eval()
    text = "Tell me about the house you grew up in and the people who lived there. " * 4
    assert_engine_matches_peft(smollm2_engine, model, adapter,
                               tokenizer(text)["input_ids"][:60])
