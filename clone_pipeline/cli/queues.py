"""clone-pipeline queue: admin training queues on the shared GPUs (create, list, show,
update, pause, resume, delete)."""

from __future__ import annotations

import click
from rich import box
from rich.table import Table

from clone_pipeline.cli.common import console, dagster_instance, operating_errors, ready


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

    settings = ready()
    try:
        made = create_queue(settings, name, owner, max_concurrent, _weights(weights))
    except operating_errors() as exc:
        raise click.ClickException(str(exc)) from exc
    console.print(_queue_table([made], {}))


@queue.command("list")
def queue_list() -> None:
    """Every queue with its limit, weights and the runs waiting and going in it."""
    from clone_pipeline.launch.queues import queue_load
    from clone_pipeline.services.queues import list_queues

    settings, instance = ready(), dagster_instance()
    found = list_queues(settings)
    loads = {q.name: queue_load(instance, q.name) for q in found}
    console.print(_queue_table(found, loads) if found else
                  "no queues yet (clone-pipeline queue create NAME --owner ADMIN)")


@queue.command("show")
@click.argument("name")
def queue_show(name: str) -> None:
    """One queue and its queued and running runs, in start order."""
    from clone_pipeline.launch.queues import queue_load, queue_runs
    from clone_pipeline.services.queues import PRIORITY_TAG, get_queue

    settings, instance = ready(), dagster_instance()
    try:
        found = get_queue(settings, name)
    except operating_errors() as exc:
        raise click.ClickException(str(exc)) from exc
    console.print(_queue_table([found], {name: queue_load(instance, name)}))
    runs = queue_runs(instance, name)
    table = Table(title=f"Runs in {name}", box=box.SIMPLE_HEAD)
    for col in ("run", "user", "status", "priority"):
        table.add_column(col)
    for r in runs:
        table.add_row(r.run_id, r.user or "-", r.status, r.tags.get(PRIORITY_TAG, "-"))
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
    from clone_pipeline.launch.queues import delete_queue

    settings, instance = ready(), dagster_instance()
    try:
        delete_queue(settings, instance, name)
    except operating_errors() as exc:
        raise click.ClickException(str(exc)) from exc
    console.print(f"deleted queue {name}")


def _change(name: str, **changes) -> None:
    from clone_pipeline.launch.queues import queue_load, update_queue

    settings, instance = ready(), dagster_instance()
    try:
        changed, retagged = update_queue(settings, instance, name, **changes)
    except operating_errors() as exc:
        raise click.ClickException(str(exc)) from exc
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


COMMANDS = (queue,)
