"""clone-pipeline commands for operating the pipeline: workflow (start, status, list, cancel),
queue (create, list, show, update, pause, resume, delete) and housekeeping.

Registered on the main group by ``cli.py``; parsing and printing only, the work is in
``control`` and ``services``. Launches go through the Dagster webserver and its daemon's run
queue (`clone-pipeline ui` starts both).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
from rich import box
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from clone_pipeline.services.queues import PRIORITIES


def _base():
    """cli.py's helpers, imported when a command runs (cli.py imports this module)."""
    from clone_pipeline import cli

    return cli


def register(main: click.Group) -> None:
    main.add_command(workflow)
    main.add_command(queue)
    main.add_command(housekeeping)


def _ready():
    base = _base()
    settings = base._settings()
    base._ensure_ready(settings)
    return settings, base._instance()


def _refused(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


def _operating_errors() -> tuple[type[Exception], ...]:
    from clone_pipeline.control.dagster_api import DagsterUnavailableError, LaunchError
    from clone_pipeline.services.queues import QueueError
    from clone_pipeline.services.workflows import UnknownWorkflowError

    return DagsterUnavailableError, LaunchError, QueueError, UnknownWorkflowError


@click.group()
def workflow() -> None:
    """Complete workflows through the run queue: data, voice, training, deployment."""


@workflow.command("start")
@click.argument("external_id")
@click.option("--voice/--no-voice", default=True, show_default=True,
              help="Include the voice stages (profile and voice-text alignment).")
@click.option("--deploy/--no-deploy", default=True, show_default=True,
              help="Serve the new version if it passes (needs `clone-pipeline serve`).")
@click.option("--priority", type=click.Choice(PRIORITIES), default="medium",
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

    from clone_pipeline.control.workflows import start_workflow

    settings, instance = _ready()
    run_config = (yaml.safe_load(Path(config_file).read_text(encoding="utf-8"))
                  if config_file else None)
    try:
        view = start_workflow(settings, instance, external_id, include_voice_integration=voice,
                              auto_deployment=deploy, queue=queue_name, priority=priority,
                              run_config=run_config)
    except _operating_errors() as exc:
        raise _refused(exc) from exc
    console = _base().console
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
    from clone_pipeline.control.workflows import workflow_status as status

    settings, instance = _ready()
    if follow and not as_json:
        _follow(settings, instance, workflow_id)
        return
    try:
        view = status(settings, instance, workflow_id)
    except _operating_errors() as exc:
        raise _refused(exc) from exc
    if as_json:
        click.echo(json.dumps(view.as_dict(), indent=2))
    else:
        _base().console.print(_stage_table(view))


@workflow.command("list")
@click.argument("external_id", required=False)
def workflow_list(external_id: str | None) -> None:
    """Workflows queued or running (of one user, if given)."""
    from clone_pipeline.control.workflows import active_workflows

    settings, instance = _ready()
    found = active_workflows(settings, instance, external_id)
    table = Table(title="Active workflows", box=box.SIMPLE_HEAD)
    for col in ("workflow", "user", "status", "queue", "priority", "stage", "estimated end"):
        table.add_column(col, overflow="fold")
    for view in found:
        current = next((n for n, s in view.stages.items() if s["status"] == "running"), "-")
        finish = view.estimated_completion
        table.add_row(str(view.id), view.user, view.status, view.queue or "-",
                      view.priority or "-", current, f"{finish:%H:%M:%S}" if finish else "-")
    _base().console.print(table if found else "no workflow is queued or running")


@workflow.command("cancel")
@click.argument("workflow_or_run_id")
def workflow_cancel(workflow_or_run_id: str) -> None:
    """Cancel a workflow (or any Dagster run by its id): queued, it leaves the queue;
    running, training checkpoints and stops, and its GPU slot is free again."""
    from clone_pipeline.control.workflows import cancel
    from clone_pipeline.services.workflows import UnknownWorkflowError, get_workflow

    settings, _ = _ready()
    try:
        run_id = get_workflow(settings, workflow_or_run_id).dagster_run_id
    except UnknownWorkflowError:
        run_id = workflow_or_run_id
    try:
        cancel(settings, run_id)
    except _operating_errors() as exc:
        raise _refused(exc) from exc
    _base().console.print(f"cancelling Dagster run {run_id}")


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
    from clone_pipeline.control.workflows import workflow_status as status

    console = _base().console
    try:
        view = status(settings, instance, workflow_id)
    except _operating_errors() as exc:
        raise _refused(exc) from exc
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
    from clone_pipeline.control.progress import training_progress

    found = training_progress(settings, instance, dagster_run_id)
    step, current = found["progress"]["currentStep"], found["metrics"]["current"]
    if step is None:
        return 0, "preparing"
    speed = (f"{current['tokens_per_second']:.0f} tok/s"
             if current["tokens_per_second"] is not None else "tok/s unavailable")
    loss = f"{current['loss']:.4f}" if current["loss"] is not None else "-"
    return found["progress"]["percentage"], f"step {step} loss {loss} {speed}"


@click.group()
def queue() -> None:
    """Admin training queues on the shared GPUs (limits and priority weights)."""


@queue.command("create")
@click.argument("name")
@click.option("--owner", required=True, help="The admin who runs the queue.")
@click.option("--max-concurrent", default=1, show_default=True, type=int,
              help="Runs of this queue at once (1-16; GPU runs also wait for a GPU slot).")
@click.option("--weights", default="high=3,medium=2,low=1", show_default=True,
              help="Run priority of each priority name: higher starts first.")
def queue_create(name: str, owner: str, max_concurrent: int, weights: str) -> None:
    """Create a queue; runs launched into it (--queue NAME) follow its limit and weights."""
    from clone_pipeline.services.queues import create_queue

    settings, _ = _ready()
    try:
        made = create_queue(settings, name, owner, max_concurrent, _weights(weights))
    except _operating_errors() as exc:
        raise _refused(exc) from exc
    _base().console.print(_queue_table([made], {}))


@queue.command("list")
def queue_list() -> None:
    """Every queue with its limit, weights and the runs waiting and going in it."""
    from clone_pipeline.control.queues import queue_load
    from clone_pipeline.services.queues import list_queues

    settings, instance = _ready()
    found = list_queues(settings)
    loads = {q.name: queue_load(instance, q.name) for q in found}
    _base().console.print(_queue_table(found, loads) if found else
                          "no queues yet (clone-pipeline queue create NAME --owner ADMIN)")


@queue.command("show")
@click.argument("name")
def queue_show(name: str) -> None:
    """One queue and its queued and running runs, in start order."""
    from clone_pipeline.control.queues import IN_PROGRESS, WAITING, queue_load, runs_in
    from clone_pipeline.services.queues import PRIORITY_TAG, RUN_PRIORITY_TAG, get_queue

    settings, instance = _ready()
    try:
        found = get_queue(settings, name)
    except _operating_errors() as exc:
        raise _refused(exc) from exc
    console = _base().console
    console.print(_queue_table([found], {name: queue_load(instance, name)}))
    runs = runs_in(instance, name, IN_PROGRESS) + sorted(
        runs_in(instance, name, WAITING),
        key=lambda r: -int(r.tags.get(RUN_PRIORITY_TAG, "0")))  # stable: oldest first
    table = Table(title=f"Runs in {name}", box=box.SIMPLE_HEAD)
    for col in ("run", "user", "status", "priority"):
        table.add_column(col)
    for r in runs:
        table.add_row(r.run_id, r.tags.get("dagster/partition", "-"), r.status.value,
                      r.tags.get(PRIORITY_TAG, "-"))
    console.print(table if runs else "no runs queued or running in it")


@queue.command("update")
@click.argument("name")
@click.option("--max-concurrent", type=int, help="New limit of runs at once (1-16).")
@click.option("--weights", help="New weights, e.g. high=5,medium=2,low=1.")
def queue_update(name: str, max_concurrent: int | None, weights: str | None) -> None:
    """Change a queue; runs already in it follow the change at the daemon's next cycle."""
    _change(name, max_concurrent_jobs=max_concurrent,
            priority_weights=_weights(weights) if weights else None)


@queue.command("pause")
@click.argument("name")
def queue_pause(name: str) -> None:
    """Hold the queue's waiting runs (running ones finish); new launches wait too."""
    _change(name, paused=True)


@queue.command("resume")
@click.argument("name")
def queue_resume(name: str) -> None:
    """Let a paused queue's runs start again."""
    _change(name, paused=False)


@queue.command("delete")
@click.argument("name")
def queue_delete(name: str) -> None:
    """Delete a queue with no queued or running runs."""
    from clone_pipeline.control.queues import delete_queue

    settings, instance = _ready()
    try:
        delete_queue(settings, instance, name)
    except _operating_errors() as exc:
        raise _refused(exc) from exc
    _base().console.print(f"deleted queue {name}")


def _change(name: str, **changes) -> None:
    from clone_pipeline.control.queues import queue_load, update_queue

    settings, instance = _ready()
    try:
        changed, retagged = update_queue(settings, instance, name, **changes)
    except _operating_errors() as exc:
        raise _refused(exc) from exc
    console = _base().console
    console.print(_queue_table([changed], {name: queue_load(instance, name)}))
    console.print(f"applied to {retagged} queued or running run(s)")


def _weights(text: str) -> dict[str, int]:
    weights = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not value.strip().lstrip("-").isdigit():
            raise click.BadParameter(f"{part!r}: write NAME=NUMBER, e.g. high=3,medium=2,low=1",
                                     param_hint="--weights")
        weights[key.strip()] = int(value)
    return weights


def _queue_table(found, loads: dict[str, dict[str, int]]) -> Table:
    table = Table(title="Training queues", box=box.SIMPLE_HEAD)
    for col in ("queue", "owner", "max at once", "weights (high/medium/low)", "state",
                "queued", "running"):
        table.add_column(col)
    for q in found:
        load = loads.get(q.name, {})
        w = q.priority_weights
        table.add_row(q.name, q.owner, str(q.max_concurrent_jobs),
                      f"{w['high']}/{w['medium']}/{w['low']}",
                      "paused" if q.paused else "open", str(load.get("queued", "-")),
                      str(load.get("running", "-")))
    return table


@click.command()
@click.option("--retention-days", type=click.IntRange(min=1),
              help="Archive what finished more than this many days ago (default: "
                   "CLONE_RETENTION_DAYS, 30).")
def housekeeping(retention_days: int | None) -> None:
    """Remove the checkpoints and adapters of old runs and versions nothing needs (rows are
    kept), thin their metrics, and show each user's disk use. The nightly_housekeeping
    schedule does the same."""
    from clone_pipeline.files import USER_FOLDER_KINDS
    from clone_pipeline.services.housekeeping import housekeep

    base = _base()
    settings = base._settings()
    base._ensure_ready(settings)
    report = housekeep(settings, retention_days)
    console = base.console
    kept = ", ".join(f"{n} {why}" for why, n in report.kept.items()) or "none"
    console.print(f"archived {report.runs_archived} run(s) and {report.versions_archived} "
                  f"version(s) that ended before {report.cutoff:%Y-%m-%d}; freed "
                  f"{report.bytes_freed / 2**20:.1f} MiB; {report.metric_rows_removed} metric "
                  f"rows thinned; kept: {kept}", soft_wrap=True)
    table = Table(title="Disk use per user (MiB)", box=box.SIMPLE_HEAD)
    for col in ("user", *USER_FOLDER_KINDS, "total"):
        table.add_column(col, justify="left" if col == "user" else "right")
    for user, kinds in report.disk_by_user.items():
        table.add_row(user, *(f"{kinds[k] / 2**20:.1f}" for k in USER_FOLDER_KINDS),
                      f"{sum(kinds.values()) / 2**20:.1f}")
    console.print(table)
