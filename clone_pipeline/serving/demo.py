"""The demo's last act: serve the evaluated personas and ask each a few questions over HTTP.

It starts the engine (recorded for this data root, so the Dagster `deployment` asset finds
it), deploys each persona through the `deploy_evaluated` job, starts the gateway on a free
loopback port, asks each deployment the same few questions through the OpenAI-compatible
API with a short-lived token, and stops everything again (`make serve` keeps it running).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import uvicorn

from clone_pipeline.engine.lifetime import running_engine
from clone_pipeline.launch.launch import run_job_for_user
from clone_pipeline.launch.names import DEPLOY_EVALUATED
from clone_pipeline.launch.runs import Run
from clone_pipeline.net import free_port
from clone_pipeline.services.deployments import list_deployments, restore_deployments
from clone_pipeline.services.engine import handle_of, spec_for, state_file
from clone_pipeline.services.tokens import create_token
from clone_pipeline.serving.app import create_app
from clone_pipeline.settings import Settings
from clone_pipeline.training.base_models import DEFAULT_BASE_MODEL
from clone_pipeline.training.evaluation import GREEDY_FREQUENCY_PENALTY

# One about her life in general, one whose answer is a fact she told (in other words than
# she was asked), one about something she never mentioned (the honest answer is to say so).
QUESTIONS = ("What did you love most about your childhood?",
             "Who was your best friend when you were young?",
             "What instrument did you play in the orchestra?")
# Greedy, so the demo's answers repeat from run to run, with the frequency penalty evaluation
# measures fidelity with (a 135M model's greedy answer can loop; see GREEDY_FREQUENCY_PENALTY)
# and room for an answer of a person's length.
ANSWER_SAMPLING = {"max_tokens": 200, "frequency_penalty": GREEDY_FREQUENCY_PENALTY}


@dataclass
class Served:
    user: str
    question: str
    deployment: str | None
    answer: str | None
    problem: str | None = None
    base_answer: str | None = None  # the base alone, same system prompt and question
    sources: list[dict] = field(default_factory=list)  # the memories the answer was given


def deploy_and_ask(instance, settings: Settings, names: list[str],
                   run_config: dict, say: Callable[[str], None],
                   questions: tuple[str, ...] = QUESTIONS,
                   base_model: str = DEFAULT_BASE_MODEL
                   ) -> list[Served]:
    settings.serving_dir.mkdir(parents=True, exist_ok=True)
    say(f"starting the engine (vLLM over {base_model}, about half a minute)")
    with running_engine(spec_for(settings, base_model), settings.serving_dir / "engine.log",
                        state_file(settings)) as engine:
        restore_deployments(settings, handle_of(engine), fresh_engine=True)  # earlier demos'
        outcomes: dict[str, Run] = {}
        for name in names:
            say(f"deploy_evaluated for {name}")
            outcomes[name] = run_job_for_user(instance, DEPLOY_EVALUATED, name, run_config)
        return _ask(settings, engine, names, outcomes, questions)


def _ask(settings, engine, names, outcomes, questions) -> list[Served]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings, handle_of(engine)),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        time.sleep(0.05)
    served = []
    try:
        for name in names:
            active = [d for d in list_deployments(settings, external_id=name)
                      if d.status == "active"]
            if not active:
                outcome = outcomes[name]
                why = "; ".join(outcome.failed_checks.values()) or outcome.error or \
                    "not promoted by its evaluation"
                served.append(Served(name, questions[0], None, None, why))
                continue
            token, _ = create_token(settings, name, name="demo", expires_in_days=1)
            for question in questions:
                served.append(_ask_one(port, token, engine, name, active[-1], question))
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    return served


def _ask_one(port: int, token: str, engine, name: str, deployment, question: str) -> Served:
    response = httpx.post(
        f"http://127.0.0.1:{port}/v1/chat/completions",
        headers={"Authorization": f"Bearer {token}"}, timeout=120,
        json={"model": deployment.name, "temperature": 0, **ANSWER_SAMPLING,
              "messages": [{"role": "user", "content": question}]})
    if response.status_code != 200:
        return Served(name, question, deployment.name, None,
                      response.json()["error"]["message"])
    body = response.json()
    return Served(name, question, deployment.name, body["choices"][0]["message"]["content"],
                  base_answer=_base_answer(engine, deployment, question),
                  sources=body.get("sources") or [])


def _base_answer(engine, deployment, question: str) -> str:
    """What the base model alone says to *question* under the person's own system prompt
    (asked of the engine directly: the gateway serves only adapters), for contrast."""
    client = engine.client()
    try:
        reply = client.chat({
            "model": "base", "temperature": 0, **ANSWER_SAMPLING,
            "messages": [{"role": "system", "content": deployment.system_prompt},
                         {"role": "user", "content": question}]})
    finally:
        client.close()
    return reply["choices"][0]["message"]["content"]
