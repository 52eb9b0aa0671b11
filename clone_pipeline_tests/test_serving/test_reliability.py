"""The serving stack under load and churn, against the real engine and gateway: every answer
comes from the caller's own adapter while deployments come and go, a client that goes away
stops its generation, bursts are all answered, deletes take effect at once, and a restarted
engine gets its deployments back."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from clone_pipeline.db import deployments as deployment_rows
from clone_pipeline.db.models import ModelVersion, utcnow
from clone_pipeline.db.session import session_scope
from clone_pipeline.services import deployments, tokens
from clone_pipeline.serving.app import Gateway
from clone_pipeline.serving.limits import Limits
from clone_pipeline_tests.test_serving.conftest import CANARY_PROMPT

pytestmark = pytest.mark.slow

# One system message for every request, so two answers differ only by adapter. With it the
# canaries' greedy answers are pairwise distinct and none is the bare base's.
CANARY_SYSTEM = "You are Person 0."
CANARY_MESSAGES = [{"role": "system", "content": CANARY_SYSTEM},
                   {"role": "user", "content": CANARY_PROMPT}]
CANARY_TOKENS = 24
CLIENTS = 16
ANSWERS = 1000  # in total over the CLIENTS
NO_CACHE = {"caching": False}  # every request reaches the engine
# Sampled at temperature 2 the tiny model does not reach its end token for hundreds of tokens.
# min_tokens = max_tokens: a generation cannot end on its own (an end token sampled early),
# so a completed generation (finished "stop" or "length") means one ran all 900 tokens.
LONG = {"max_tokens": 900, "min_tokens": 900, "temperature": 2.0, "seed": 1}


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def wait_until(condition: Callable[[], object], timeout: float = 15.0, what: str = "") -> object:
    """Poll *condition* until it is truthy; fail naming *what* after *timeout* seconds."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.05)
    return result


def greedy(engine, model: str) -> str:
    answer = engine.client.chat({"model": model, "messages": CANARY_MESSAGES,
                                 "max_tokens": CANARY_TOKENS, "temperature": 0})
    return answer["choices"][0]["message"]["content"]


def engine_counter(engine, name: str, label: str = "") -> float:
    """A counter of the engine's Prometheus metrics (summed over its label sets)."""
    text = engine.client._call("GET", "/metrics").text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{") and label in line)


def inference_statuses(settings, deployment_id) -> list[str]:
    with session_scope(settings.database_url) as session:
        return [r.status for r in deployment_rows.logs_of(session, deployment_id)]


def add_version(settings, external_id: str, number: int, adapter) -> None:
    """A further (current) model version of *external_id* on another adapter."""
    from clone_pipeline.db import users

    with session_scope(settings.database_url) as session:
        session.add(ModelVersion(user_id=users.get_user(session, external_id).id,
                                 version=number, base_model="local-tiny",
                                 adapter_path=str(adapter), adapter_sha256=f"{number:064x}",
                                 metrics={}, promoted_at=utcnow()))


# ------------------------------------------------------------------ clients that go away


@pytest.fixture
def one_user(serving_root, engine, gateway_factory):
    settings = serving_root.settings
    user = serving_root.users[0]
    dep = deployments.deploy_model(settings, engine, user, optimizations=NO_CACHE)
    token, _ = tokens.create_token(settings, user)
    return settings, gateway_factory(settings), dep, token


def _open_a_stream_and_leave(url: str, token: str, model: str) -> None:
    """Open a long stream and close the connection as soon as the gateway answers 200 (the
    generation has started: the gateway waits for the engine's first line). Leaving then
    rather than after the first token keeps the proof independent of how late that token
    reaches the client on a busy machine; it is also the moment vLLM 0.32 loses a request
    whose connection closes (see ``Gateway.stream``), which this test caught."""
    with httpx.Client(base_url=url, headers=_auth(token), timeout=60) as http, http.stream(
            "POST", "/v1/chat/completions", json={
                "model": model, "messages": CANARY_MESSAGES, "stream": True, **LONG}) as reply:
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/event-stream")


def ran_long(engine) -> float:
    """Generations the engine finished after more than 500 tokens, whatever it labels their
    end (vLLM records no statistics for a request it aborted). With min_tokens = max_tokens
    = 900 only one never stopped gets here."""
    return (engine_counter(engine, "vllm:request_generation_tokens_count")
            - engine_counter(engine, "vllm:request_generation_tokens_bucket", 'le="500.0"'))


def test_a_client_that_disconnects_mid_stream_stops_its_generation(one_user, engine):
    """51 clients in turn open a 900-token stream (min_tokens = max_tokens: it cannot end
    sooner) and leave. Were the aborts lost, all 51 would run their 900 tokens; they stop
    after a small share of them. The proof does not depend on no generation ever finishing:
    vLLM's engine process keeps generating while its API server is busy, so on a loaded
    machine a 3-second local-tiny generation now and then ends before its first chunk is
    even sent; at most a tenth may."""
    settings, url, dep, token = one_user
    wait_until(lambda: engine.client.running_requests() == 0, what="an idle engine")
    finished = ran_long(engine)
    generated = engine_counter(engine, "vllm:generation_tokens_total")

    for _ in range(51):
        _open_a_stream_and_leave(url, token, dep.name)
    wait_until(lambda: engine.client.running_requests() == 0, timeout=20,
               what="no generation outlives its client")
    stopped_late = ran_long(engine) - finished
    assert stopped_late <= 5
    assert (engine_counter(engine, "vllm:generation_tokens_total") - generated
            < 51 * LONG["max_tokens"] // 4)
    statuses = wait_until(lambda: (found := inference_statuses(settings, dep.id)) and len(
        found) >= 51 and found, what="51 inference_logs rows")
    assert statuses == ["cancelled"] * 51
    reply = httpx.post(f"{url}/v1/chat/completions", headers=_auth(token), json={
        "model": dep.name, "messages": CANARY_MESSAGES, "max_tokens": 8}, timeout=60)
    assert reply.status_code == 200
    # the count does see a generation that runs its 900 tokens
    assert httpx.post(f"{url}/v1/chat/completions", headers=_auth(token), timeout=120, json={
        "model": dep.name, "messages": CANARY_MESSAGES, **LONG}).status_code == 200
    assert ran_long(engine) == finished + stopped_late + 1


def test_two_hundred_concurrent_requests_are_all_answered(one_user):
    _settings, url, dep, token = one_user

    async def burst() -> list[int]:
        async with httpx.AsyncClient(base_url=url, headers=_auth(token), timeout=120,
                                     limits=httpx.Limits(max_connections=200)) as http:
            replies = await asyncio.gather(*(http.post("/v1/chat/completions", json={
                "model": dep.name, "messages": [{"role": "user", "content": f"Hello {n}"}],
                "max_tokens": 4, "temperature": 0.8}) for n in range(200)))
        return [r.status_code for r in replies]

    assert asyncio.run(burst()) == [200] * 200


# --------------------------------------------------------------- delete and restore


def test_a_deleted_deployment_stops_serving_on_the_next_request(one_user, engine):
    settings, url, dep, token = one_user
    body = {"model": dep.name, "messages": CANARY_MESSAGES, "max_tokens": 4}
    chat = lambda: httpx.post(f"{url}/v1/chat/completions", headers=_auth(token),  # noqa: E731
                              json=body, timeout=60)
    assert chat().status_code == 200
    assert dep.adapter_name in engine.client.model_names()
    deployments.delete_deployment(settings, engine, dep.id)
    assert chat().status_code == 404
    assert dep.adapter_name not in engine.client.model_names()


def test_restore_loads_every_active_deployment_into_a_fresh_engine(
        serving_root, engine, gateway_factory):
    settings, users = serving_root.settings, serving_root.users
    deps = [deployments.deploy_model(settings, engine, u, optimizations=NO_CACHE)
            for u in users[:3]]
    deployments.delete_deployment(settings, engine, deps[2].id)
    expected = {d.id: greedy(engine, d.adapter_name) for d in deps[:2]}
    keys = {d.id: tokens.create_token(settings, d.user)[0] for d in deps[:2]}
    url = gateway_factory(settings)
    for dep in deps[:2]:  # what a restarted engine has: no adapters
        engine.client.unload_adapter(dep.adapter_name)
    assert not {d.adapter_name for d in deps} & engine.client.model_names()

    assert deployments.restore_deployments(settings, engine) == (2, [])
    assert {d.adapter_name for d in deps} & engine.client.model_names() == {
        d.adapter_name for d in deps[:2]}
    for dep in deps[:2]:
        reply = httpx.post(f"{url}/v1/chat/completions", headers=_auth(keys[dep.id]), json={
            "model": dep.name, "messages": CANARY_MESSAGES, "max_tokens": CANARY_TOKENS,
            "temperature": 0}, timeout=60)
        assert reply.json()["choices"][0]["message"]["content"] == expected[dep.id]


def test_a_deployment_left_half_way_is_failed_by_a_fresh_engine_not_by_a_shared_one(
        serving_root, engine):
    settings = serving_root.settings
    with session_scope(settings.database_url) as session:
        version = session.query(ModelVersion).first()
        stuck = deployment_rows.add(session, user_id=version.user_id,
                                    model_version_id=version.id, name="stuck",
                                    status="deploying", adapter_name="dstuckr1", settings={})
        stuck_id = stuck.id
    deployments.restore_deployments(settings, engine)  # a shared engine: someone may be busy
    assert deployments.get_deployment(settings, stuck_id).status == "deploying"
    deployments.restore_deployments(settings, engine, fresh_engine=True)
    failed = deployments.get_deployment(settings, stuck_id)
    assert failed.status == "failed" and "interrupted" in failed.error


# ------------------------------------- canary isolation (last: the session's set-up lands on
# a shorter test first, inside the per-test timeout)


@pytest.fixture
def canary_answers(engine, canary_adapters) -> tuple[dict[int, str], str]:
    """Each canary adapter's greedy answer (computed one at a time) and the bare base's."""
    answers = {}
    for i, path in enumerate(canary_adapters):
        engine.client.load_adapter(f"probe-canary{i:02d}", path)
        try:
            answers[i] = greedy(engine, f"probe-canary{i:02d}")
        finally:
            engine.client.unload_adapter(f"probe-canary{i:02d}")
    return answers, greedy(engine, "base")


def test_every_answer_comes_from_the_callers_own_adapter_while_deployments_churn(
        serving_root, engine, gateway_factory, canary_adapters, canary_answers):
    settings, users = serving_root.settings, serving_root.users
    answers, base = canary_answers
    texts = [*answers.values(), base]
    distinct = [i for i, text in answers.items() if texts.count(text) == 1]
    # Two distinct spares: a deployment created, asked and deleted over and over during the
    # run, and the adapter a running deployment is switched to and back.
    churn, spare = distinct[-2], distinct[-1]
    clients = distinct[:-2][:CLIENTS]
    assert len(clients) >= 12, f"only {len(distinct)} canaries answer distinctly: {answers}"

    with ThreadPoolExecutor(4) as pool:
        deps = dict(zip(clients, pool.map(
            lambda i: deployments.deploy_model(settings, engine, users[i],
                                               optimizations=NO_CACHE), clients), strict=True))
    keys = {i: tokens.create_token(settings, users[i])[0] for i in [*clients, churn]}
    updated = clients[0]  # switched between its v1 and a v2 on the spare adapter
    add_version(settings, users[updated], 2, canary_adapters[spare])
    allowed = {i: {answers[i]} for i in clients} | {updated: {answers[updated], answers[spare]}}
    url = gateway_factory(settings)

    done, problems = threading.Event(), []
    churned, during = {"create": 0, "update": 0, "delete": 0}, {}

    def churn_deployments():
        """Create, ask and delete the churn user's deployment and flip *updated*'s version,
        until the clients are done."""
        version = 1
        with httpx.Client(base_url=url, headers=_auth(keys[churn]), timeout=120) as http:
            while not done.is_set():
                dep = deployments.deploy_model(settings, engine, users[churn],
                                               optimizations=NO_CACHE)
                churned["create"] += 1
                reply = http.post("/v1/chat/completions", json={
                    "model": dep.name, "messages": CANARY_MESSAGES, "temperature": 0,
                    "max_tokens": CANARY_TOKENS})
                text = reply.json()["choices"][0]["message"]["content"]
                if text != answers[churn]:
                    problems.append(f"the new deployment answered {text!r}")
                deployments.delete_deployment(settings, engine, dep.id)
                churned["delete"] += 1
                version = 3 - version
                deployments.update_deployment(settings, engine, deps[updated].id,
                                              version=version)
                churned["update"] += 1

    async def client(i: int, count: int, got: list) -> None:
        async with httpx.AsyncClient(base_url=url, headers=_auth(keys[i]), timeout=120) as http:
            for _ in range(count):
                reply = await http.post("/v1/chat/completions", json={
                    "model": deps[i].name, "messages": CANARY_MESSAGES, "temperature": 0,
                    "max_tokens": CANARY_TOKENS})
                got.append((i, reply.status_code, reply.json()["choices"][0]["message"]
                            ["content"] if reply.status_code == 200 else reply.text))

    async def clients_run() -> list:
        got: list = []
        per = -(-ANSWERS // len(clients))
        await asyncio.gather(*(client(i, per, got) for i in clients))
        during.update(churned)  # what churned while the clients were asking
        return got

    mutator = threading.Thread(target=lambda: _record_errors(churn_deployments, problems))
    started = time.perf_counter()
    mutator.start()
    try:
        got = asyncio.run(clients_run())
    finally:
        done.set()
        mutator.join(timeout=300)
    elapsed = time.perf_counter() - started
    print(f"\n{len(got)} answers from {len(clients)} clients in {elapsed:.1f} s "
          f"({len(got) / elapsed:.1f}/s) while {during}")

    assert not problems
    assert len(got) >= ANSWERS
    assert all(during[k] >= 1 for k in churned), during
    failed = [(i, status, text) for i, status, text in got if status != 200]
    assert not failed, failed[:5]
    others = {text: i for i, text in answers.items()} | {base: "base"}
    wrong = [(i, others.get(text, "unknown"), text) for i, _, text in got
             if text not in allowed[i]]
    assert not wrong, f"{len(wrong)} answers not from the caller's adapter: {wrong[:5]}"


def test_a_request_that_looked_up_a_deployment_just_before_an_update_is_answered(
        serving_root, engine, canary_adapters):
    """The update unloads the old adapter once the row names the new one, so a request that
    holds the old name gets the engine's 404 in between: the gateway looks again. (Driven
    through the gateway's own lookup, with the update landing in that gap every time.)"""
    settings, user = serving_root.settings, serving_root.users[0]
    dep = deployments.deploy_model(settings, engine, user, optimizations=NO_CACHE)
    add_version(settings, user, 2, canary_adapters[1])
    who = tokens.authenticate(settings, tokens.create_token(settings, user)[0])

    async def ask() -> tuple[list[str], dict]:
        gateway, seen = Gateway(settings, engine, Limits()), []

        async def send(current: deployments.Deployment) -> dict:
            seen.append(current.adapter_name)
            if len(seen) == 1:
                await asyncio.to_thread(deployments.update_deployment, settings, engine,
                                        dep.id, version=2)
            payload = gateway.engine_payload(current, CANARY_MESSAGES, {
                "max_tokens": CANARY_TOKENS, "temperature": 0})
            return await gateway.complete(current, payload, current.name)

        try:
            return seen, await gateway.current(who, dep.name, send)
        finally:
            await gateway.close()

    seen, answer = asyncio.run(ask())
    now = deployments.get_deployment(settings, dep.id)
    assert seen == [dep.adapter_name, now.adapter_name] and now.model_version == 2
    assert answer["choices"][0]["message"]["content"] == greedy(engine, now.adapter_name)


def _record_errors(work: Callable[[], None], problems: list) -> None:
    try:
        work()
    except Exception as exc:  # noqa: BLE001 - reported by the test's assertion
        problems.append(f"churn failed: {exc!r}")
