"""`clone-pipeline serve`: the engine (unless CLONE_ENGINE_URL names one), every active
deployment restored into it, then the gateway on uvicorn. Ctrl-C or SIGTERM stops both."""

from __future__ import annotations

import logging
from collections.abc import Callable

import uvicorn

from clone_pipeline.engine.process import EngineSpec, start_engine, write_state
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

log = logging.getLogger(__name__)


def serve(settings: Settings, host: str, port: int, base_model: str,
          say: Callable[[str], None] = print, **engine_options) -> None:
    settings.serving_dir.mkdir(parents=True, exist_ok=True)
    engine_process = None
    if settings.engine_url:
        handle = connect(settings)
        if handle is None:
            raise RuntimeError(f"CLONE_ENGINE_URL {settings.engine_url} does not answer "
                               f"/health: start that engine, or unset it to run one here")
    else:
        spec: EngineSpec = spec_for(settings, base_model, **engine_options)
        say(f"starting the engine for {base_model} (vLLM; about half a minute on a small CPU, "
            f"log: {settings.serving_dir / 'engine.log'})")
        engine_process = start_engine(spec, settings.serving_dir / "engine.log")
        write_state(state_file(settings), engine_process)
        handle = handle_of(engine_process)
    try:
        _restore(settings, handle, say, fresh_engine=engine_process is not None)
        say(f"gateway on http://{host}:{port}/ (chat page at /, OpenAPI at /docs)")
        uvicorn.run(create_app(settings, handle), host=host, port=port, log_level="warning",
                    access_log=False)
    finally:
        if engine_process is not None:
            state_file(settings).unlink(missing_ok=True)
            engine_process.stop()


def _restore(settings: Settings, handle: EngineHandle, say: Callable[[str], None],
             fresh_engine: bool) -> None:
    restored, problems = restore_deployments(settings, handle, fresh_engine)
    say(f"restored {restored} active deployment(s)")
    for problem in problems:
        say(f"  not restored: {problem}")
