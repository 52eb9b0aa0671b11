"""clone-pipeline workflow: complete workflows through the Dagster webserver and its daemon's
run queue (`clone-pipeline ui` starts both): start, status, list and cancel."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
from rich import box
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from clone_pipeline.cli.common import console, dagster_instance, operating_errors, ready
from clone_pipeline.services.queues import DEFAULT_PRIORITY, PRIORITIES


@click.group()
def workflow() -> None:
    """Complete workflows through the run queue: data, voice, training, deployment."""


@workflow.command("start")
@click.argument("external_id")
@click.option("--voice/--no-voice", default=True, show_default=True,
              help="Include the voice stages (profile and voice-text alignment).")
@click.option("--deploy/--no-deploy", default=True, show_default=True,
              help="Serve the new version if it passes (needs `clone-pipeline serve`).")
@click.option("--priority", type=click.Choice(PRIORITIES), default=DEFAULT_PRIORITY,
              show_default=True, help="Start order among queued runs (the queue's weights).")
@click.option("--queue", "queue_name", help="Admin queue to launch into (queue list).")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              help="Run config laid over the workflow's (YAML or JSON), e.g. a training "
                   "preset from examples/run_config/.")
@click.option("--follow", is_flag=True, help="Then show its progress until it ends.")
def workflow_start(external_id: str, voice: bool, deploy: bool, priority: str,
                   queue_name: str | None, config_file: str | None, follow: bool) -> None:
    """Queue a complete workflow for a user; prints its id and estimated completion."""
    import yaml

    from clone_pipeline.launch.workflows import start_workflow

    settings, instance = ready(), dagster_instance()
    run_config = (yaml.safe_load(Path(config_file).read_text(encoding="utf-8"))
                  if config_file else None)
    try:
        view = start_workflow(settings, instance, external_id, include_voice_integration=voice,
                              auto_deployment=deploy, queue=queue_name, priority=priority,
                              run_config=run_config)
    except operating_errors() as exc:
        raise click.ClickException(str(exc)) from exc
    console.print(f"workflow {view.id} queued for {external_id} (Dagster run "
                  f"{view.dagster_run_id}; stages: {', '.join(view.stages)})", soft_wrap=True)
    finish = view.estimated_completion
    console.print(f"estimated completion: {finish:%Y-%m-%d %H:%M:%S %Z}" if finish else
                  f"estimated completion: unknown ({view.estimate.basis})", soft_wrap=True)
    if follow:
        _follow(settings, instance, str(view.id))
    else:
        console.print(f"follow it with: clone-pipeline workflow status {view.id} --follow")


@workflow.command("status")
@click.argument("workflow_id")
@click.option("--follow", is_flag=True, help="Keep a live bar per stage until it ends.")
@click.option("--json", "as_json", is_flag=True, help="Print the REST API's JSON instead.")
def workflow_status(workflow_id: str, follow: bool, as_json: bool) -> None:
    """A workflow's stages with their state and times (live with --follow)."""
    from clone_pipeline.launch.workflows import workflow_status as status

    settings, instance = ready(), dagster_instance()
    if follow and not as_json:
        _follow(settings, instance, workflow_id)
        return
    try:
        view = status(settings, instance, workflow_id)
    except operating_errors() as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(view.as_dict(), indent=2))
    else:
        console.print(_stage_table(view))


@workflow.command("list")
@click.argument("external_id", required=False)
def workflow_list(external_id: str | None) -> None:
    """Workflows queued or running (of one user, if given)."""
    from clone_pipeline.launch.workflows import active_workflows

    settings, instance = ready(), dagster_instance()
    found = active_workflows(settings, instance, external_id)
    table = Table(title="Active workflows", box=box.SIMPLE_HEAD)
    for col in ("workflow", "user", "status", "queue", "priority", "stage", "estimated end"):
        table.add_column(col, overflow="fold")
    for view in found:
        current = next((n for n, s in view.stages.items() if s["status"] == "running"), "-")
        finish = view.estimated_completion
        table.add_row(str(view.id), view.user, view.status, view.queue or "-",
                      view.priority or "-", current, f"{finish:%H:%M:%S}" if finish else "-")
    console.print(table if found else "no workflow is queued or running")


@workflow.command("cancel")
@click.argument("workflow_or_run_id")
def workflow_cancel(workflow_or_run_id: str) -> None:
    """Cancel a workflow (or any Dagster run by its id): queued, it leaves the queue;
    running, training checkpoints and stops, and its GPU slot is free again."""
    from clone_pipeline.launch.workflows import cancel
    from clone_pipeline.services.workflows import UnknownWorkflowError, get_workflow

    settings = ready()
    try:
        run_id = get_workflow(settings, workflow_or_run_id).dagster_run_id
    except UnknownWorkflowError:
        run_id = workflow_or_run_id
    try:
        cancel(settings, run_id)
    except operating_errors() as exc:
        raise click.ClickException(str(exc)) from exc
    console.print(f"cancelling Dagster run {run_id}")


def _stage_table(view) -> Table:
    finish = view.estimated_completion
    table = Table(title=f"Workflow {view.id} for {view.user}: {view.status}",
                  caption=(f"estimated completion {finish:%Y-%m-%d %H:%M:%S}" if finish
                           else view.estimate.basis),
                  box=box.SIMPLE_HEAD)
    for col in ("stage", "status", "started", "took", "typical"):
        table.add_column(col)
    for name, state in view.stages.items():
        typical = view.estimate.seconds.get(name)
        table.add_row(name, state["status"], (state["startedAt"] or "-")[11:19],
                      _seconds(state["durationSeconds"]), _seconds(typical))
    if view.error:
        table.add_row("error", view.error, "", "", "")
    return table


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f} s" if value < 10 else f"{value:.0f} s"


def _follow(settings, instance, workflow_id: str) -> None:
    """A bar per stage until the workflow ends; the training stage shows its loss, tokens/s
    and step progress from training_metrics as they arrive."""
    from clone_pipeline.launch.workflows import workflow_status as status

    try:
        view = status(settings, instance, workflow_id)
    except operating_errors() as exc:
        raise click.ClickException(str(exc)) from exc
    with Progress(TextColumn("{task.description:<24}"), BarColumn(),
                  TextColumn("{task.fields[state]:<10}"), TimeElapsedColumn(),
                  TextColumn("{task.fields[figures]}"), console=console) as bars:
        tasks = {name: bars.add_task(name, total=100, state=state["status"], figures="")
                 for name, state in view.stages.items()}
        while True:
            for name, state in view.stages.items():
                done = state["status"] in ("completed", "skipped", "failed", "cancelled")
                figures, percent = "", 100 if done else 0
                if name == "trained_adapter" and state["status"] == "running":
                    percent, figures = _training_figures(settings, instance, view.dagster_run_id)
                bars.update(tasks[name], completed=percent, state=state["status"],
                            figures=figures)
            if view.status not in ("pending", "running"):
                break
            time.sleep(2)
            view = status(settings, instance, workflow_id)
    console.print(_stage_table(view))


def _training_figures(settings, instance, dagster_run_id: str) -> tuple[float, str]:
    from clone_pipeline.launch.progress import training_progress

    found = training_progress(settings, instance, dagster_run_id)
    step, current = found["progress"]["currentStep"], found["metrics"]["current"]
    if step is None:
        return 0, "preparing"
    speed = (f"{current['tokens_per_second']:.0f} tok/s"
             if current["tokens_per_second"] is not None else "tok/s unavailable")
    loss = f"{current['loss']:.4f}" if current["loss"] is not None else "-"
    return found["progress"]["percentage"], f"step {step} loss {loss} {speed}"


COMMANDS = (workflow,)
