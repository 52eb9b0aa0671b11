"""`clone-pipeline serve`: the engine (unless CLONE_ENGINE_URL names one), every active
deployment restored into it, then the gateway on uvicorn.

`serve` owns its engine's life: SIGTERM (what docker stop, systemd and Kubernetes send) and
Ctrl-C both stop the gateway and then the engine's whole process group; a crashed engine is
restarted (leftovers ended, back-off, deployments restored) while the gateway answers 503
with Retry-After; and the engine gets the parent-death signal, so it also ends when `serve`
is killed outright. An engine named by CLONE_ENGINE_URL is someone else's: never touched."""

from __future__ import annotations

import signal
from collections.abc import Callable

import uvicorn

from clone_pipeline.engine.lifetime import running_engine
from clone_pipeline.services.deployments import restore_deployments
from clone_pipeline.services.engine import (
    EngineHandle,
    connect,
    handle_of,
    spec_for,
    state_file,
)
from clone_pipeline.serving.app import create_app
from clone_pipeline.settings import Settings

# Seconds the gateway gives open requests once told to stop, before it closes them.
GRACEFUL_STOP_S = 10


def serve(settings: Settings, host: str, port: int, base_model: str,
          say: Callable[[str], None] = print, **engine_options) -> None:
    settings.serving_dir.mkdir(parents=True, exist_ok=True)
    # SIGTERM stops like Ctrl-C: uvicorn stops the gateway on either; before and after it runs
    # (the engine starting, the adapters loading) SystemExit unwinds the blocks that stop the
    # engine, and serve exits 143, as a process ended by SIGTERM reads.
    signal.signal(signal.SIGTERM, _terminate)
    if settings.engine_url:
        handle = connect(settings)
        if handle is None:
            raise RuntimeError(f"CLONE_ENGINE_URL {settings.engine_url} does not answer "
                               f"/health: start that engine, or unset it to run one here")
        _restore(settings, handle, say, fresh_engine=False)
        _run_gateway(settings, handle, host, port, say)
        return
    say(f"starting the engine for {base_model} (vLLM; about half a minute on a small CPU, "
        f"log: {settings.serving_dir / 'engine.log'})")
    with running_engine(spec_for(settings, base_model, **engine_options),
                        settings.serving_dir / "engine.log", state_file(settings),
                        on_restart=lambda engine: _restore(settings, handle_of(engine), say,
                                                           fresh_engine=False),
                        say=say) as engine:
        handle = handle_of(engine)
        _restore(settings, handle, say, fresh_engine=True)
        _run_gateway(settings, handle, host, port, say)


def _terminate(signum, _frame) -> None:
    raise SystemExit(128 + signum)


def _run_gateway(settings: Settings, handle: EngineHandle, host: str, port: int,
                 say: Callable[[str], None]) -> None:
    say(f"gateway on http://{host}:{port}/ (chat page at /, OpenAPI at /docs)")
    uvicorn.run(create_app(settings, handle), host=host, port=port, log_level="warning",
                access_log=False, timeout_graceful_shutdown=GRACEFUL_STOP_S)


def _restore(settings: Settings, handle: EngineHandle, say: Callable[[str], None],
             fresh_engine: bool) -> None:
    restored, problems = restore_deployments(settings, handle, fresh_engine)
    say(f"restored {restored} active deployment(s)")
    for problem in problems:
        say(f"  not restored: {problem}")
