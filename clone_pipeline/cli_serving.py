"""clone-pipeline commands for serving: serve, token, deploy, deployments, undeploy, chat.

Registered on the main group by ``cli.py``; parsing and printing only, the work is in
``services`` and ``serving``.
"""

from __future__ import annotations

import json
import sys

import click
from rich.table import Table

from clone_pipeline.training.base_models import DEFAULT_BASE_MODEL


def _base():
    """cli.py's helpers (settings, readiness, consoles); imported when a command runs,
    since cli.py imports this module while it loads."""
    from clone_pipeline import cli

    return cli


def register(main: click.Group) -> None:
    for command in (serve, token, deploy, deployments, undeploy, chat):
        main.add_command(command)


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
@click.option("--quantization", type=click.Choice(["none", "8bit", "4bit"]), default="none",
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

    settings = _base()._settings()
    _base()._ensure_ready(settings, create=True)
    try:
        run_server(settings, host, port, base_model, say=_base().console.print,
                   max_loras=max_loras, kv_cache_gb=kv_cache_gb, quantization=quantization,
                   gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len)
    except (EngineError, EngineNotInstalledError, ValueError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from exc


@click.group()
def token() -> None:
    """API tokens: create, list, revoke. A user token reaches only that user's deployments;
    an admin token reaches all."""


@token.command(name="create")
@click.argument("external_id", required=False)
@click.option("--admin", is_flag=True, help="An admin token (every user's deployments).")
@click.option("--name", help="A label to recognise it by.")
@click.option("--expires-days", type=float, help="Expire after this many days.")
def token_create(external_id: str | None, admin: bool, name: str | None,
                 expires_days: float | None) -> None:
    """Create a token for EXTERNAL_ID (or --admin); it is printed once, keep it safe."""
    from clone_pipeline.services.tokens import create_token

    settings = _base()._settings()
    _base()._ensure_ready(settings)
    try:
        secret, info = create_token(settings, external_id, admin, name, expires_days)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    if sys.stdout.isatty():
        who = "admin" if info.admin else info.user
        _base().err_console.print(f"token {info.prefix} for {who} (shown once):")
    click.echo(secret)


@token.command(name="list")
def token_list() -> None:
    """Every token: prefix, owner, created, expiry, revoked."""
    from clone_pipeline.services.tokens import list_tokens

    settings = _base()._settings()
    _base()._ensure_ready(settings)
    table = Table(title="API tokens (only their prefixes are kept in view)")
    for col in ("prefix", "name", "user", "admin", "created", "expires", "revoked"):
        table.add_column(col)
    for t in list_tokens(settings):
        table.add_row(t.prefix, t.name, t.user or "-", "yes" if t.admin else "",
                      f"{t.created_at:%Y-%m-%d %H:%M}",
                      f"{t.expires_at:%Y-%m-%d %H:%M}" if t.expires_at else "-",
                      f"{t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "")
    _base().console.print(table)


@token.command(name="revoke")
@click.argument("prefix_or_id")
def token_revoke(prefix_or_id: str) -> None:
    """Revoke a token by the prefix `token list` shows (or its id); refused from the next
    request."""
    from clone_pipeline.services.tokens import revoke_token

    settings = _base()._settings()
    _base()._ensure_ready(settings)
    count = revoke_token(settings, prefix_or_id)
    if not count:
        raise click.ClickException(f"no active token {prefix_or_id!r} (see clone-pipeline "
                                   f"token list)")
    _base().console.print(f"revoked {count} token(s)")


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

    settings = _base()._settings()
    _base()._ensure_ready(settings)
    try:
        wanted = json.loads(optimizations) if optimizations else None
    except ValueError as exc:
        raise click.ClickException(f"--optimizations is not JSON: {exc}") from exc
    try:
        with _base().console.status("loading the adapter and checking a reply"):
            dep = deploy_model(settings, _engine(settings), external_id, version=version,
                               name=name, inference_type=inference_type,
                               optimizations=wanted)
    except _refusals() as exc:
        raise click.ClickException(str(exc)) from exc
    _base().console.print(f"deployed {dep.name} ({dep.id}): {external_id} v{dep.model_version}, "
                       f"{dep.status}", markup=False)


@click.command()
@click.argument("external_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def deployments(external_id: str | None, as_json: bool) -> None:
    """Live deployments (of one user, if given)."""
    from clone_pipeline.services.deployments import list_deployments

    settings = _base()._settings()
    _base()._ensure_ready(settings)
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
    _base().console.print(table)


@click.command()
@click.argument("deployment")
def undeploy(deployment: str) -> None:
    """Delete DEPLOYMENT (id or name): it stops serving at once; its logs and the model
    version are kept."""
    from clone_pipeline.services.deployments import delete_deployment
    from clone_pipeline.services.engine import connect

    settings = _base()._settings()
    _base()._ensure_ready(settings)
    try:
        dep = delete_deployment(settings, connect(settings), deployment)
    except _refusals() as exc:
        raise click.ClickException(str(exc)) from exc
    _base().console.print(f"deleted {dep.name} ({dep.id})", markup=False)


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
