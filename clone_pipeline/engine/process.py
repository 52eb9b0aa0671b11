"""Start and stop a vLLM engine process for one base model.

The engine is vLLM's OpenAI-compatible server with runtime LoRA loading switched on. It is
bound to 127.0.0.1 with a random API key, so the gateway is the only way in. Start-up takes
about half a minute on two CPU cores (the model load and, on CPU, the KV cache set-up), so
callers start it once and keep it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from clone_pipeline.engine.client import EngineClient, EngineError
from clone_pipeline.files import atomic_path
from clone_pipeline.net import free_port
from clone_pipeline.processes import die_with_parent, end_group
from clone_pipeline.quantization import QUANTIZATIONS, Quantization

STARTUP_TIMEOUT_S = 600.0
STARTING_GRACE_S = 3.0  # SIGTERM to SIGKILL for an engine stopped while it starts


class EngineNotInstalledError(RuntimeError):
    pass


@dataclass(frozen=True)
class EngineSpec:
    """How to run the engine: one base model, every adapter loaded at run time."""

    base_model: str  # a local folder (local-tiny) or a Hugging Face id
    max_loras: int = 16  # adapters in one batch (vLLM preallocates their slots)
    max_lora_rank: int = 16
    max_model_len: int = 1024
    dtype: str = "auto"  # float32 on CPU (vLLM's CPU LoRA path), bfloat16 on CUDA
    kv_cache_gb: float = 1.0  # CPU: VLLM_CPU_KVCACHE_SPACE
    gpu_memory_utilization: float = 0.85  # CUDA: share of the GPU the engine may take
    quantization: str = Quantization.NONE.value  # QUANTIZATIONS (bitsandbytes, CUDA only)
    threads: int | None = None  # CPU: OMP threads (default: every core)
    prefix_caching: bool = True
    max_num_seqs: int = 64
    # where deployed adapters are published for the LoRA resolver (engine/adapters.py)
    lora_dir: str | None = None
    # CPU: one matmul per run of tokens sharing an adapter (engine_plugin/) instead of
    # vLLM's per-token weight gather; off gives vLLM's own ops.
    segment_lora_ops: bool = True

    def describe(self) -> dict:
        return asdict(self)


@dataclass
class EngineProcess:
    process: subprocess.Popen  # the guard, leader of the engine's process group
    port: int
    key: str
    spec: EngineSpec
    log_path: Path
    device: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> EngineClient:
        return EngineClient(self.url, self.key)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, grace: float = 20.0) -> None:
        """End the engine's whole process group (API server, EngineCore, workers): SIGTERM,
        then SIGKILL after *grace*; also when the API server itself has already died."""
        end_group(self.process, grace)

    def wait_until_ready(self, timeout: float = STARTUP_TIMEOUT_S) -> None:
        """Wait until it answers (see start_engine's wait)."""
        _wait_until_ready(self, timeout)

    def restart(self, timeout: float = STARTUP_TIMEOUT_S,
                cancelled: Callable[[], bool] = lambda: False) -> None:
        """End whatever is left of this engine, then start it again on the same port with the
        same key (so every client of the old one reaches the new one) and wait for it."""
        self.stop()
        self.process = _spawn(self.spec, self.log_path, self.port, self.key,
                              self.device == "cuda")
        _wait_until_ready(self, timeout, cancelled)


def engine_python() -> Path:
    """The interpreter that has vLLM: CLONE_ENGINE_PYTHON, else ``.venv-engine`` next to this
    environment (what `make setup` creates), else this interpreter."""
    named = os.environ.get("CLONE_ENGINE_PYTHON")
    candidates = [Path(named)] if named else []
    candidates += [Path(sys.prefix).parent / ".venv-engine" / "bin" / "python",
                   Path(sys.executable)]
    for path in candidates:
        if path.exists() and _has_vllm(path):
            return path
    raise EngineNotInstalledError(
        "no vLLM found (looked in " + ", ".join(str(c) for c in candidates) + "): run "
        "`make engine` in the checkout, or set CLONE_ENGINE_PYTHON to a Python with vllm, or "
        "CLONE_ENGINE_URL to a running vLLM server")


def _has_vllm(python: Path) -> bool:
    lib = python.parent.parent / "lib"
    return any(lib.glob("python3*/site-packages/vllm/__init__.py"))


def cuda_available() -> bool:
    return shutil.which("nvidia-smi") is not None and subprocess.run(
        ["nvidia-smi", "-L"], capture_output=True).returncode == 0


def engine_command(spec: EngineSpec, python: Path, port: int, key: str,
                   cuda: bool) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of a vLLM server for *spec*."""
    if spec.quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization {spec.quantization!r}: use one of "
                         f"{', '.join(QUANTIZATIONS)}")
    if spec.quantization != Quantization.NONE and not cuda:
        raise ValueError(f"quantization {spec.quantization} needs a CUDA GPU (bitsandbytes); "
                         f"this machine has none: use quantization none here")
    dtype = spec.dtype if spec.dtype != "auto" else ("bfloat16" if cuda else "float32")
    cmd = [str(python), "-m", "vllm.entrypoints.openai.api_server",
           "--model", spec.base_model, "--served-model-name", "base",
           "--host", "127.0.0.1", "--port", str(port),
           "--enable-lora", "--max-loras", str(spec.max_loras),
           "--max-lora-rank", str(spec.max_lora_rank),
           "--max-model-len", str(spec.max_model_len), "--dtype", dtype,
           "--max-num-seqs", str(spec.max_num_seqs), "--disable-uvicorn-access-log",
           "--enable-prefix-caching" if spec.prefix_caching else "--no-enable-prefix-caching"]
    if spec.quantization != Quantization.NONE:
        cmd += ["--quantization", "bitsandbytes"]
    # The key goes by environment: on the command line any local user could read it (ps),
    # and a key starting with "-" would be parsed as an option.
    env = {**os.environ, "VLLM_API_KEY": key, "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True",
           "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1"}
    env["CLONE_SEGMENT_LORA"] = "1" if spec.segment_lora_ops else "0"  # the spec decides
    if spec.lora_dir:  # an adapter it has not loaded is resolved from there on first use
        Path(spec.lora_dir).mkdir(parents=True, exist_ok=True)
        env["VLLM_LORA_RESOLVER_CACHE_DIR"] = spec.lora_dir
    if cuda:
        cmd += ["--gpu-memory-utilization", str(spec.gpu_memory_utilization)]
    else:
        threads = spec.threads or os.cpu_count() or 1
        # vLLM drops to one torch thread on small machines unless told; binding the OMP
        # threads to the cores measured 73-82 tokens/s against 54-70 on two cores.
        env.update(VLLM_CPU_KVCACHE_SPACE=str(max(1, round(spec.kv_cache_gb))),
                   OMP_NUM_THREADS=str(threads),
                   VLLM_CPU_OMP_THREADS_BIND=f"0-{threads - 1}")
    return cmd, env


def start_engine(spec: EngineSpec, log_path: Path, port: int | None = None,
                 timeout: float = STARTUP_TIMEOUT_S, wait: bool = True) -> EngineProcess:
    """Start a vLLM server for *spec* and wait until it answers; its output goes to
    *log_path*. Raises EngineError (with the log's tail) if it exits or never answers.
    With *wait* false it returns at once: the caller overlaps the start (about half a minute
    on CPU) with other work and calls ``wait_until_ready`` before using it.
    Prefer ``engine.lifetime.running_engine``, which also stops it."""
    cuda = cuda_available()
    port = port or free_port()
    key = secrets.token_urlsafe(24)
    engine = EngineProcess(_spawn(spec, log_path, port, key, cuda), port, key, spec,
                           log_path, "cuda" if cuda else "cpu")
    if wait:
        engine.wait_until_ready(timeout)
    return engine


def _spawn(spec: EngineSpec, log_path: Path, port: int, key: str,
           cuda: bool) -> subprocess.Popen:
    """The engine's API server under its guard (engine/guard.py), which leads a process group
    of its own (EngineCore and workers join it), has the parent-death signal, and ends the
    whole group when the API server exits or when it is told to stop or orphaned."""
    cmd, env = engine_command(spec, engine_python(), port, key, cuda)
    cmd = [sys.executable, str(Path(__file__).with_name("guard.py")), *cmd]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                preexec_fn=die_with_parent)


def _wait_until_ready(engine: EngineProcess, timeout: float,
                      cancelled: Callable[[], bool] = lambda: False) -> None:
    """Wait until *engine* answers /health. A start that fails, times out, is *cancelled* or
    interrupted (Ctrl-C, SIGTERM) ends the engine's whole group before it raises."""
    client = engine.client()
    deadline = time.monotonic() + timeout
    try:
        while not client.healthy():
            if engine.process.poll() is not None:
                raise EngineError(f"the engine exited with code {engine.process.returncode} "
                                  f"while starting:\n{log_tail(engine.log_path)}")
            if cancelled():
                raise EngineError("the engine's start was cancelled")
            if time.monotonic() > deadline:
                raise EngineError(f"the engine did not answer within {timeout:.0f} s:\n"
                                  f"{log_tail(engine.log_path)}")
            time.sleep(0.5)
    except BaseException:
        # a starting engine has no request to finish and does not act on SIGTERM yet
        engine.stop(grace=STARTING_GRACE_S)
        raise
    finally:
        client.close()


def log_tail(path: Path, lines: int = 20) -> str:
    """The last *lines* lines of the engine's log, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# ------------------------------------------------------------ the running engine's state


def write_state(path: Path, engine: EngineProcess) -> None:
    """Record the running engine (URL, key, pid) for other processes of this data root; the
    file holds the key, so only its owner may read it."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({"url": engine.url, "key": engine.key,
                                   "pid": engine.process.pid, "device": engine.device,
                                   "spec": engine.spec.describe()}))
        tmp.chmod(0o600)


def read_state(path: Path) -> dict | None:
    """The engine recorded at *path* if its process still runs."""
    try:
        state = json.loads(path.read_text())
        os.kill(state["pid"], 0)
    except (OSError, ValueError, KeyError):
        return None
    return state
