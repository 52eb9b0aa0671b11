"""Serving: the gateway and the vLLM engine with 16 users' adapters, side by side with PEFT.

One run, any of three base models: local-tiny (the project's 1M-parameter model), a
Llama-shaped model of about 90M parameters with random weights and local-tiny's tokenizer
(throughput does not depend on weight values), and the default base, SmolLM2-135M-Instruct
(--models smollm2-135m-instruct). Each user has a
rank-16 random LoRA adapter on q, k, v and o (--lora-targets all-linear: every linear layer,
the trainer's default). A temporary data root (SQLite) holds 20 users,
their model versions, deployments made by the deployment service (its generation check is
skipped, ``check=False``: a random model's reply never reaches the end token) and one API
token each. The engine is started by clone_pipeline.engine.process.start_engine (OMP threads
on every core, max_loras 16, max_num_seqs 64, prefix caching on), the gateway is the real
`clone-pipeline serve` process pointed at it (CLONE_ENGINE_URL), on loopback.

Every generation is greedy and exactly NEW_TOKENS long (vLLM's ``min_tokens``, PEFT's
``min_new_tokens``); tokens are counted from each answer's usage. Measured per model:

- throughput, 16 concurrent clients each on a different user's adapter (3 rounds of 16
  requests, tokens/s over the rounds' wall time): through the gateway; against the engine
  directly (mixed adapters, all 16 on the same adapter, the base model without LoRA in the
  same engine); and against PEFT, the way HF-based clone tools serve: (a) one request at a
  time, switching adapters with set_adapter, (b) PEFT's mixed-adapter batch
  (generate(..., adapter_names=...)) with all 16 in one batch. PEFT runs in its own process
  after the engine has stopped, fp32, torch on every core;
- latency: p50/p99 end to end and time to first token (streaming), 1, 4 and 16 closed-loop
  clients, through the gateway and against the engine directly with the same payload; the
  gateway's overhead per request (1-token answers, gateway and engine interleaved);
- the response cache: one deterministic (temperature 0) request repeated, end-to-end p50;
- memory: the engine's resident memory (RSS summed over its process group) with 20 adapters
  loaded and used against 1.

Then (unless --quick) what each engine setting buys: the engine restarted with one changed
setting (OMP threads, max_num_seqs, max_loras) and the direct mixed-adapter throughput
measured again. Targets are checked and reported as met or not; the numbers are whatever
this machine gives (2 shared CPU cores here: every client, the gateway and the engine share
them, and the load average at start and end is reported because the figures move with it).

    python benchmarks/serving.py [--quick] [--models local-tiny,random-90m] [--out FILE]
    python benchmarks/serving.py --models smollm2-135m-instruct --lora-targets all-linear \
        --tune-model none
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import httpx
from harness import emit

CLIENTS, USERS, NEW_TOKENS, RANK = 16, 20, 32, 16
RANDOM_90M = {"hidden_size": 768, "intermediate_size": 2048, "num_hidden_layers": 12,
              "num_attention_heads": 12, "num_key_value_heads": 12,
              "max_position_embeddings": 1024, "tie_word_embeddings": True,
              "rope_theta": 10000.0}
TARGETS = {"gateway_vs_peft_one_at_a_time": 3.0, "gateway_vs_peft_mixed_batch": 1.2,
           "mixed_vs_same_adapter": 0.9, "cached_p50_ms": 5.0, "memory_20_vs_1": 1.05}
QUESTIONS = [
    "Tell me a little about yourself.", "What was your first job?",
    "Where did you grow up?", "What do you remember about your school?",
    "Who taught you to cook?", "What did you do on Sundays?",
    "Tell me about your best friend.", "What music did you like when you were young?",
    "How did you meet your partner?", "What advice would you give me?",
    "What was the hardest year of your life?", "What made you laugh most?",
    "Which place would you visit again?", "What did your parents do?",
    "What are you proudest of?", "What should I remember about you?"]


# ------------------------------------------------------------------ models and adapters


def build_models(models_dir: Path, names: list[str]) -> dict[str, Path]:
    """local-tiny (built if needed), the random 90M model (cached by its config) and the
    default base, SmolLM2-135M-Instruct (converted once)."""
    from clone_pipeline.training import smollm2
    from clone_pipeline.training.local_tiny import ensure_base_model

    tiny = ensure_base_model(models_dir)
    paths = {"local-tiny": tiny}
    if smollm2.NAME in names:
        paths[smollm2.NAME] = smollm2.ensure_base_model(models_dir)
    if "random-90m" in names:
        digest = hashlib.sha256(json.dumps(RANDOM_90M, sort_keys=True).encode()).hexdigest()
        big = models_dir / "bench-random-90m" / digest[:12]
        if not (big / "model.safetensors").exists():
            import torch
            from transformers import AutoConfig, AutoTokenizer, LlamaConfig, LlamaForCausalLM

            tokenizer = AutoTokenizer.from_pretrained(tiny)
            ids = AutoConfig.from_pretrained(tiny)
            torch.manual_seed(0)
            config = LlamaConfig(vocab_size=ids.vocab_size, bos_token_id=ids.bos_token_id,
                                 eos_token_id=ids.eos_token_id, pad_token_id=ids.pad_token_id,
                                 **RANDOM_90M)
            LlamaForCausalLM(config).save_pretrained(big)
            tokenizer.save_pretrained(big)
        paths["random-90m"] = big
    return {n: paths[n] for n in names}


TARGETS_DEFAULT = "q_proj,k_proj,v_proj,o_proj"


def build_adapters(model_path: Path, folder: Path, count: int,
                   targets: str = TARGETS_DEFAULT) -> list[Path]:
    """*count* rank-16 LoRA adapters with random weights on *targets* (q, k, v, o as the
    tests make; "all-linear" as the trainer's default)."""
    from transformers import AutoModelForCausalLM

    from clone_pipeline.training.random_adapters import save_random_adapters

    return save_random_adapters(
        AutoModelForCausalLM.from_pretrained(model_path), folder, count,
        "all-linear" if targets == "all-linear" else targets.split(","))


def parameters(model_path: Path) -> int:
    from safetensors import safe_open

    with safe_open(model_path / "model.safetensors", "pt") as f:
        return sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())  # noqa: SIM118 (not iterable)


# ------------------------------------------------------------------ data root and servers


def make_root(home: Path, models_dir: Path, base_model: str, adapters: list[Path]):
    """A fresh SQLite data root: one user per adapter, each with a current model version."""
    from clone_pipeline.db.models import ModelVersion, User, utcnow
    from clone_pipeline.db.session import migrate, session_scope
    from clone_pipeline.settings import load_settings

    settings = load_settings({"CLONE_HOME": str(home), "CLONE_MODELS_DIR": str(models_dir)})
    settings.ensure_dirs()
    migrate(settings.database_url)
    with session_scope(settings.database_url) as session:
        for i, adapter in enumerate(adapters):
            user = User(external_id=f"person-{i:02d}", display_name=f"Person {i}")
            session.add(user)
            session.flush()
            session.add(ModelVersion(user_id=user.id, version=1, base_model=base_model,
                                     adapter_path=str(adapter), adapter_sha256=f"{i:064d}",
                                     metrics={}, promoted_at=utcnow()))
    return settings


def start_gateway(settings, engine, log_path: Path) -> tuple[subprocess.Popen, str]:
    """`clone-pipeline serve` on a free loopback port, using the running engine."""
    from clone_pipeline.engine.process import free_port, log_tail

    port = free_port()
    env = {**os.environ, "CLONE_HOME": str(settings.home),
           "CLONE_MODELS_DIR": str(settings.models_dir), "CLONE_ENGINE_URL": engine.url,
           "CLONE_ENGINE_KEY": engine.key, "CLONE_RATE_LIMIT": "1000000"}
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", "from clone_pipeline.cli import main; main()", "serve",
             "--host", "127.0.0.1", "--port", str(port)], env=env, stdout=log,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the gateway exited:\n{log_tail(log_path)}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    stop_process(process)
    raise RuntimeError(f"the gateway did not start:\n{log_tail(log_path)}")


def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def group_rss_mb(pid: int) -> float:
    """Resident memory of every process in *pid*'s process group (the engine and its
    workers), MB."""
    import psutil

    total = 0
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(proc.pid) == pid:
                total += proc.memory_info().rss
        except (psutil.Error, ProcessLookupError, PermissionError):
            pass
    return total / 2**20


# ------------------------------------------------------------------ the load generator


class Target:
    """Where requests go and how a request for user *i* looks there."""

    def __init__(self, url: str, key_of, body_of):
        self.url, self.key_of, self.body_of = url, key_of, body_of

    def request(self, i: int, question: str, **extra) -> tuple[dict, dict]:
        return ({"Authorization": f"Bearer {self.key_of(i)}"},
                {**self.body_of(i, question), **extra})


def gateway_target(url: str, deps, tokens) -> Target:
    return Target(f"{url}/v1/chat/completions", lambda i: tokens[i], lambda i, q: {
        "model": deps[i].name, "messages": [{"role": "user", "content": q}]})


def engine_target(engine, deps, model_of=None) -> Target:
    """The engine called with exactly the payload the gateway would send (system prompt,
    per-user cache salt); *model_of* overrides the adapter (same adapter, base model)."""
    def body(i: int, q: str) -> dict:
        dep = deps[i]
        salt = hashlib.sha256(f"clone-user:{dep.user_id}".encode()).hexdigest()[:32]
        return {"model": model_of(i) if model_of else dep.adapter_name, "cache_salt": salt,
                "messages": [{"role": "system", "content": dep.system_prompt},
                             {"role": "user", "content": q}]}
    return Target(f"{engine.url}/v1/chat/completions", lambda i: engine.key, body)


FIXED = {"max_tokens": NEW_TOKENS, "min_tokens": NEW_TOKENS, "temperature": 0}


async def call(http: httpx.AsyncClient, target: Target, i: int, question: str,
               stream: bool = False, **sampling) -> dict:
    headers, body = target.request(i, question, **(sampling or FIXED))
    start = time.perf_counter()
    if not stream:
        response = await http.post(target.url, headers=headers, json=body)
        response.raise_for_status()
        usage = response.json()["usage"]
        return {"latency": time.perf_counter() - start, "ttft": None,
                "tokens": usage["completion_tokens"]}
    body |= {"stream": True, "stream_options": {"include_usage": True}}
    first, tokens = None, 0
    async with http.stream("POST", target.url, headers=headers, json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line[6:].strip() == "[DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("choices") and first is None:
                first = time.perf_counter()
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
    return {"latency": time.perf_counter() - start, "ttft": first - start, "tokens": tokens}


def _client() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=64))


_nonce = iter(range(10**9))


def question(i: int) -> str:
    """User *i*'s question, made unique so that no answer comes from the gateway's cache."""
    return f"{QUESTIONS[i % len(QUESTIONS)]} (#{next(_nonce)})"


def throughput(target: Target, rounds: int, users=None) -> dict:
    """Rounds of CLIENTS concurrent requests; completion tokens over the rounds' wall time."""
    users = users or list(range(CLIENTS))

    async def go():
        async with _client() as http:
            tokens, seconds = 0, 0.0
            for _ in range(rounds):
                start = time.perf_counter()
                done = await asyncio.gather(*(call(http, target, i, question(i))
                                              for i in users))
                seconds += time.perf_counter() - start
                tokens += sum(d["tokens"] for d in done)
            return {"tokens_per_s": round(tokens / seconds, 1), "tokens": tokens,
                    "seconds": round(seconds, 2), "requests": rounds * len(users)}
    return asyncio.run(go())


def latency(target: Target, clients: int, per_client: int) -> dict:
    """*clients* closed-loop streaming clients (each on its own user), *per_client* each."""
    async def client(http, i):
        return [await call(http, target, i, question(i), stream=True)
                for _ in range(per_client)]

    async def go():
        async with _client() as http:
            return [r for rs in await asyncio.gather(*(client(http, i)
                                                       for i in range(clients))) for r in rs]
    done = asyncio.run(go())
    return {"requests": len(done), **_pcts("latency", [d["latency"] for d in done]),
            **_pcts("ttft", [d["ttft"] for d in done])}


def _pcts(name: str, seconds: list[float]) -> dict:
    ms = sorted(s * 1000 for s in seconds)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    return {f"{name}_p50_ms": round(statistics.median(ms), 1), f"{name}_p99_ms": round(p99, 1)}


def overhead(gateway: Target, engine: Target, pairs: int) -> dict:
    """1-token answers, gateway and engine interleaved: the gateway's cost per request."""
    async def go():
        async with _client() as http:
            gw, direct = [], []
            for n in range(pairs):
                one = {"max_tokens": 1, "temperature": 0}
                gw.append((await call(http, gateway, n % CLIENTS, question(n), **one))["latency"])
                direct.append((await call(http, engine, n % CLIENTS, question(n),
                                          **one))["latency"])
            return gw, direct
    gw, direct = asyncio.run(go())
    gw_ms, direct_ms = statistics.median(gw) * 1000, statistics.median(direct) * 1000
    return {"pairs": pairs, "gateway_p50_ms": round(gw_ms, 1),
            "engine_direct_p50_ms": round(direct_ms, 1),
            "overhead_p50_ms": round(gw_ms - direct_ms, 1)}


def cached(gateway: Target, repeats: int) -> dict:
    """The same deterministic request again and again: every answer after the first is the
    gateway's cached one."""
    async def go():
        async with _client() as http:
            fixed = "Tell me a little about yourself."
            first = await call(http, gateway, 0, fixed)
            again = [await call(http, gateway, 0, fixed) for _ in range(repeats)]
            floor = []
            for _ in range(repeats):
                start = time.perf_counter()
                (await http.get(gateway.url.replace("/v1/chat/completions", "/healthz")))
                floor.append(time.perf_counter() - start)
            return first, again, floor
    first, again, floor = asyncio.run(go())
    # /healthz: the same client and server with no token check, lookup or cache: the floor.
    return {"first_ms": round(first["latency"] * 1000, 1), "repeats": repeats,
            **_pcts("cached", [a["latency"] for a in again]),
            **_pcts("healthz_floor", floor)}


def use_all(target: Target, users: list[int]) -> None:
    async def go():
        async with _client() as http:
            await asyncio.gather(*(call(http, target, i, question(i), max_tokens=4,
                                        temperature=0) for i in users))
    asyncio.run(go())


# ------------------------------------------------------------------ one model


def measure_model(name: str, path: Path, work: Path, models_dir: Path, quick: bool,
                  tune: bool, targets: str = TARGETS_DEFAULT) -> dict:
    from clone_pipeline.engine.process import EngineSpec, start_engine
    from clone_pipeline.services.deployments import deploy_model
    from clone_pipeline.services.engine import handle_of
    from clone_pipeline.services.tokens import create_token

    say(f"{name}: adapters and data root")
    adapters = build_adapters(path, work / "adapters", USERS, targets)
    settings = make_root(work / "home", models_dir, "local-tiny" if name == "local-tiny"
                         else str(path), adapters)
    rounds = 1 if quick else 3
    report: dict = {"model": name, "parameters": parameters(path), "lora_targets": targets}
    spec = EngineSpec(str(path), max_loras=16, max_num_seqs=64)
    start = time.perf_counter()
    engine = start_engine(spec, work / "engine.log")
    report["engine"] = {**spec.describe(), "start_s": round(time.perf_counter() - start, 1),
                        "device": engine.device}
    gateway_process = None
    try:
        handle = handle_of(engine)
        # Memory: one adapter loaded and used, then all USERS.
        deps = [deploy_model(settings, handle, "person-00", check=False)]
        direct = engine_target(engine, deps)
        use_all(direct, [0])
        time.sleep(1)
        rss_one = group_rss_mb(engine.process.pid)
        say(f"{name}: deploying {USERS} adapters")
        deps += [deploy_model(settings, handle, f"person-{i:02d}", check=False)
                 for i in range(1, USERS)]
        direct = engine_target(engine, deps)
        use_all(direct, list(range(USERS)))
        time.sleep(1)
        rss_all = group_rss_mb(engine.process.pid)
        report["memory"] = {"engine_rss_mb_1_adapter": round(rss_one),
                            f"engine_rss_mb_{USERS}_adapters": round(rss_all),
                            "ratio": round(rss_all / rss_one, 3)}
        tokens = [create_token(settings, f"person-{i:02d}")[0] for i in range(USERS)]
        gateway_process, url = start_gateway(settings, engine, work / "gateway.log")
        gateway = gateway_target(url, deps, tokens)
        same = engine_target(engine, deps, model_of=lambda i: deps[0].adapter_name)
        base = engine_target(engine, deps, model_of=lambda i: "base")
        say(f"{name}: throughput")
        throughput(gateway, 1)  # warm-up: every adapter in a slot, every path exercised
        report["throughput"] = {
            "gateway_mixed_adapters": throughput(gateway, rounds),
            "engine_direct_mixed_adapters": throughput(direct, rounds),
            "engine_direct_same_adapter": throughput(same, rounds),
            "engine_direct_base_no_lora": throughput(base, rounds)}
        say(f"{name}: latency")
        per = {1: 4 if quick else 6, 4: 1 if quick else 2, 16: 1}
        report["latency_streaming"] = {
            "gateway": {str(c): latency(gateway, c, n) for c, n in per.items()},
            "engine_direct": {str(c): latency(direct, c, n) for c, n in per.items()}}
        report["gateway_overhead"] = overhead(gateway, direct, 8 if quick else 20)
        report["cache"] = cached(gateway, 20 if quick else 50)
    finally:
        if gateway_process is not None:
            stop_process(gateway_process)
        engine.stop()
    if tune:
        report["tuning_engine_direct_mixed_tokens_per_s"] = tuning(
            spec, deps, adapters, work, 1,
            report["throughput"]["engine_direct_mixed_adapters"]["tokens_per_s"])
    say(f"{name}: PEFT baselines")
    prompts = work / "prompts.json"
    prompts.write_text(json.dumps([
        [{"role": "system", "content": deps[i].system_prompt},
         {"role": "user", "content": question(i)}] for i in range(CLIENTS)]))
    report["throughput"].update(run_peft(path, adapters[:CLIENTS], prompts))
    report["ratios"], report["targets"] = verdicts(report)
    say(f"{name}: {json.dumps(report)}")  # kept if a later model fails
    return report


def tuning(spec, deps, adapters: list[Path], work: Path, rounds: int, baseline: float
           ) -> dict:
    """The engine restarted with one setting changed; direct mixed-adapter tokens/s."""
    from clone_pipeline.engine.process import start_engine

    cores = os.cpu_count() or 1
    variants = {f"threads={max(1, cores // 2)}": {"threads": max(1, cores // 2)},
                "max_num_seqs=8": {"max_num_seqs": 8}, "max_loras=4": {"max_loras": 4},
                "segment_lora_ops=off (vLLM's own CPU LoRA ops)": {"segment_lora_ops": False}}
    out = {f"baseline (threads={cores}, max_num_seqs={spec.max_num_seqs}, "
           f"max_loras={spec.max_loras})": baseline}
    for label, change in variants.items():
        say(f"tuning: {label}")
        engine = start_engine(replace(spec, **change),
                              work / f"engine-{label.split(' ')[0]}.log")
        try:
            for dep, adapter in zip(deps[:CLIENTS], adapters, strict=False):
                engine.client().load_adapter(dep.adapter_name, adapter)
            target = engine_target(engine, deps)
            throughput(target, 1)
            out[label] = throughput(target, rounds)["tokens_per_s"]
        finally:
            engine.stop()
    return out


def verdicts(report: dict) -> tuple[dict, dict]:
    t = {k: v["tokens_per_s"] for k, v in report["throughput"].items()}
    ratios = {
        "gateway_vs_peft_one_at_a_time": t["gateway_mixed_adapters"]
        / t["peft_one_at_a_time_set_adapter"],
        "gateway_vs_peft_mixed_batch": t["gateway_mixed_adapters"]
        / t["peft_mixed_batch_adapter_names"],
        "mixed_vs_same_adapter": t["engine_direct_mixed_adapters"]
        / t["engine_direct_same_adapter"],
        "gateway_mixed_vs_same_adapter": t["gateway_mixed_adapters"]
        / t["engine_direct_same_adapter"],
        "base_no_lora_vs_mixed": t["engine_direct_base_no_lora"]
        / t["engine_direct_mixed_adapters"],
        "gateway_vs_engine_direct": t["gateway_mixed_adapters"]
        / t["engine_direct_mixed_adapters"]}
    ratios = {k: round(v, 2) for k, v in ratios.items()}
    cache_ms = report["cache"]["cached_p50_ms"]
    memory = report["memory"]["ratio"]
    targets = {
        "gateway_vs_peft_one_at_a_time >= 3x": ratios["gateway_vs_peft_one_at_a_time"] >= 3,
        "gateway_vs_peft_mixed_batch >= 1.2x": ratios["gateway_vs_peft_mixed_batch"] >= 1.2,
        "mixed_vs_same_adapter >= 0.9x": ratios["mixed_vs_same_adapter"] >= 0.9,
        "cached_p50 < 5 ms": cache_ms < TARGETS["cached_p50_ms"],
        f"memory_{USERS}_vs_1_adapter <= 1.05x": memory <= TARGETS["memory_20_vs_1"]}
    return ratios, {k: {"met": bool(v)} for k, v in targets.items()}


# ------------------------------------------------------------------ PEFT (its own process)


def run_peft(path: Path, adapters: list[Path], prompts: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child-peft", str(path), str(prompts),
                          *map(str, adapters)], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"the PEFT baseline failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def peft_child(path: str, prompts_file: str, adapters: list[str]) -> dict:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(os.cpu_count() or 1)
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "left"
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(
        path, dtype=torch.float32), adapters[0], adapter_name="u00")
    for i, adapter in enumerate(adapters[1:], 1):
        model.load_adapter(adapter, adapter_name=f"u{i:02d}")
    model.eval()
    names = [f"u{i:02d}" for i in range(len(adapters))]
    texts = [tokenizer.apply_chat_template(m, add_generation_prompt=True, tokenize=False)
             for m in json.loads(Path(prompts_file).read_text())]
    fixed = {"max_new_tokens": NEW_TOKENS, "min_new_tokens": NEW_TOKENS, "do_sample": False,
             "pad_token_id": tokenizer.pad_token_id}

    def generate(batch: list[str], adapter_names: list[str] | None = None) -> int:
        enc = tokenizer(batch, return_tensors="pt", padding=True)
        extra = {"adapter_names": adapter_names} if adapter_names else {}
        with torch.inference_mode():
            out = model.generate(**enc, **fixed, **extra)
        return int((out[:, enc["input_ids"].shape[1]:] != tokenizer.pad_token_id).sum())

    model.set_adapter(names[0])
    generate(texts[:1])  # warm-up
    start, tokens, latencies = time.perf_counter(), 0, []
    for name, text in zip(names, texts, strict=True):
        model.set_adapter(name)
        tokens += generate([text])
        latencies.append(time.perf_counter() - start)  # all 16 arrived at once, in a queue
    seq_s = time.perf_counter() - start
    generate(texts[:2], names[:2])  # warm-up of the mixed path
    start = time.perf_counter()
    batch_tokens = generate(texts, names)
    batch_s = time.perf_counter() - start
    return {"peft_one_at_a_time_set_adapter": {
                "tokens_per_s": round(tokens / seq_s, 1), "tokens": tokens,
                "seconds": round(seq_s, 2), "requests": len(texts),
                **_pcts("queued_latency", latencies)},
            "peft_mixed_batch_adapter_names": {
                "tokens_per_s": round(batch_tokens / batch_s, 1), "tokens": batch_tokens,
                "seconds": round(batch_s, 2), "requests": len(texts)}}


# ------------------------------------------------------------------ main


def say(message: str) -> None:
    print(f"[serving] {message}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="one round per measurement, fewer latency samples, no tuning")
    parser.add_argument("--models", default="local-tiny,random-90m",
                        help="comma-separated: local-tiny, random-90m, "
                             "smollm2-135m-instruct (the default base)")
    parser.add_argument("--tune-model", default="random-90m",
                        help="the model the engine settings are tuned on (none: skip)")
    parser.add_argument("--lora-targets", default=TARGETS_DEFAULT,
                        help="the adapters' modules: comma-separated, or all-linear (the "
                             "trainer's default)")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--child-peft", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_peft:
        path, prompts, *adapters = args.child_peft
        print(json.dumps(peft_child(path, prompts, adapters)))
        return
    models_dir = Path(os.environ.get("BENCH_MODELS_DIR", "/tmp/clone-bench/models"))
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    started, load_at_start = time.perf_counter(), os.getloadavg()[0]
    paths = build_models(models_dir, names)
    results = []
    for name, path in paths.items():
        with tempfile.TemporaryDirectory(prefix=f"serving-{name}-") as tmp:
            results.append(measure_model(name, path, Path(tmp), models_dir, args.quick,
                                         tune=not args.quick and name == args.tune_model,
                                         targets=args.lora_targets))
    report = {"benchmark": "serving", "cpus": os.cpu_count(),
              "load_average_at_start_and_end": [load_at_start, os.getloadavg()[0]],
              "clients": CLIENTS,
              "new_tokens": NEW_TOKENS, "lora_rank": RANK, "quick": args.quick,
              "targets": TARGETS, "results": results,
              "seconds": round(time.perf_counter() - started, 1)}
    emit(report, args.out)


if __name__ == "__main__":
    main()
