"""clone-pipeline commands for serving: serve (engine and gateway), deploy, deployments,
undeploy and chat."""

from __future__ import annotations

import json

import click
from rich.table import Table

from clone_pipeline.cli.common import console, ready
from clone_pipeline.quantization import QUANTIZATIONS, Quantization
from clone_pipeline.training.base_models import DEFAULT_BASE_MODEL


def _engine(settings):
    from clone_pipeline.services.engine import connect

    found = connect(settings)
    if found is None:
        raise click.ClickException("no engine is running for this data root: start "
                                   "`clone-pipeline serve` (or `make serve`) first, or set "
                                   "CLONE_ENGINE_URL and CLONE_ENGINE_KEY")
    return found


def _refusals():
    from clone_pipeline.services.deployments import DeploymentError, DeploymentNotFound

    return DeploymentError, DeploymentNotFound


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to serve on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to serve on.")
@click.option("--base-model", default=DEFAULT_BASE_MODEL, show_default=True,
              help="The engine's base model (smollm2-135m-instruct, local-tiny, a hub id or "
                   "a folder); every deployment must have been trained on it.")
@click.option("--max-loras", default=16, show_default=True, type=int,
              help="Adapters the engine can mix in one batch.")
@click.option("--kv-cache-gb", default=1.0, show_default=True, type=float,
              help="CPU: memory for the engine's KV cache.")
@click.option("--gpu-memory-utilization", default=0.85, show_default=True, type=float,
              help="CUDA: the share of GPU memory the engine may take.")
@click.option("--quantization", type=click.Choice(QUANTIZATIONS), default=Quantization.NONE.value,
              show_default=True, help="Base model quantisation (bitsandbytes, CUDA only).")
@click.option("--max-model-len", default=1024, show_default=True, type=int,
              help="Context length the engine serves.")
def serve(host: str, port: int, base_model: str, max_loras: int, kv_cache_gb: float,
          gpu_memory_utilization: float, quantization: str, max_model_len: int) -> None:
    """Serve the clones: start the inference engine (vLLM, unless CLONE_ENGINE_URL names a
    running one), restore every active deployment into it, and run the gateway: the
    OpenAI-compatible API, the seed's deploy and voice endpoints and the chat page."""
    from clone_pipeline.engine.client import EngineError
    from clone_pipeline.engine.process import EngineNotInstalledError
    from clone_pipeline.serving.server import serve as run_server

    settings = ready(create=True)
    try:
        run_server(settings, host, port, base_model, say=console.print,
                   max_loras=max_loras, kv_cache_gb=kv_cache_gb, quantization=quantization,
                   gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len)
    except (EngineError, EngineNotInstalledError, ValueError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from exc


@click.command()
@click.argument("external_id")
@click.option("--version", type=int, help="Model version number (default: the current one).")
@click.option("--name", help="Deployment name (default: USER-vN).")
@click.option("--inference-type", type=click.Choice(["text", "voice_integrated"]),
              default="text", show_default=True)
@click.option("--optimizations", help='JSON, e.g. \'{"caching": true}\'.')
def deploy(external_id: str, version: int | None, name: str | None, inference_type: str,
           optimizations: str | None) -> None:
    """Deploy EXTERNAL_ID's model version on the running engine, after a smoke check."""
    from clone_pipeline.services.deployments import deploy_model

    settings = ready()
    try:
        wanted = json.loads(optimizations) if optimizations else None
    except ValueError as exc:
        raise click.ClickException(f"--optimizations is not JSON: {exc}") from exc
    try:
        with console.status("loading the adapter and checking a reply"):
            dep = deploy_model(settings, _engine(settings), external_id, version=version,
                               name=name, inference_type=inference_type,
                               optimizations=wanted)
    except _refusals() as exc:
        raise click.ClickException(str(exc)) from exc
    console.print(f"deployed {dep.name} ({dep.id}): {external_id} v{dep.model_version}, "
                  f"{dep.status}", markup=False)


@click.command()
@click.argument("external_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def deployments(external_id: str | None, as_json: bool) -> None:
    """Live deployments (of one user, if given)."""
    from clone_pipeline.services.deployments import list_deployments

    settings = ready()
    found = list_deployments(settings, external_id=external_id)
    if as_json:
        click.echo(json.dumps([d.public() for d in found], indent=2))
        return
    table = Table(title="Deployments")
    for col in ("name", "id", "user", "version", "type", "status", "created"):
        table.add_column(col)
    for d in found:
        table.add_row(d.name, str(d.id), d.user, f"v{d.model_version}", d.inference_type,
                      d.status + (f": {d.error}" if d.error else ""),
                      f"{d.created_at:%Y-%m-%d %H:%M}")
    console.print(table)


@click.command()
@click.argument("deployment")
def undeploy(deployment: str) -> None:
    """Delete DEPLOYMENT (id or name): it stops serving at once; its logs and the model
    version are kept."""
    from clone_pipeline.services.deployments import delete_deployment
    from clone_pipeline.services.engine import connect

    settings = ready()
    try:
        dep = delete_deployment(settings, connect(settings), deployment)
    except _refusals() as exc:
        raise click.ClickException(str(exc)) from exc
    console.print(f"deleted {dep.name} ({dep.id})", markup=False)


@click.command()
@click.argument("message")
@click.option("--url", default="http://127.0.0.1:8000", show_default=True,
              help="The gateway.")
@click.option("--model", required=True, help="Deployment name or id.")
@click.option("--token", "api_token", envvar="CLONE_API_TOKEN", required=True,
              help="API token (or CLONE_API_TOKEN).")
@click.option("--max-tokens", default=128, show_default=True, type=int)
@click.option("--temperature", default=0.7, show_default=True, type=float)
def chat(message: str, url: str, model: str, api_token: str, max_tokens: int,
         temperature: float) -> None:
    """Send MESSAGE to a deployment through the gateway and print the streamed reply."""
    import httpx

    body = {"model": model, "messages": [{"role": "user", "content": message}],
            "stream": True, "max_tokens": max_tokens, "temperature": temperature}
    try:
        with httpx.stream("POST", f"{url.rstrip('/')}/v1/chat/completions", json=body,
                          headers={"Authorization": f"Bearer {api_token}"},
                          timeout=120) as response:
            if response.status_code != 200:
                response.read()
                raise click.ClickException(f"{response.status_code}: "
                                           f"{response.json()['error']['message']}")
            for line in response.iter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    for choice in json.loads(line[6:]).get("choices", []):
                        click.echo(choice["delta"].get("content") or "", nl=False)
    except httpx.HTTPError as exc:
        raise click.ClickException(f"the gateway at {url} did not answer: {exc}") from exc
    click.echo()


COMMANDS = (serve, deploy, deployments, undeploy, chat)
