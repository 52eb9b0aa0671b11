"""clone-pipeline commands that run the pipeline in-process and look at runs: run, runs and
progress (a training run's live figures)."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import click
from rich import box
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from clone_pipeline.cli.common import QUIET_RUN, console, dagster_instance, print_outcome, ready
from clone_pipeline.launch.names import DATA_ONLY
from clone_pipeline.settings import Settings


@click.command()
@click.argument("external_ids", nargs=-1, required=True)
@click.option("--job", default=DATA_ONLY, show_default=True,
              help="Dagster job to run: data_only, complete_workflow, voice_integration, "
                   "train_cpu_demo, train_rtx5090 or train_h100.")
@click.option("--config", "config_file", type=click.Path(exists=True, path_type=Path),
              help="Run config (YAML or JSON) for the job, as in the Launchpad; examples for "
                   "each training preset are in examples/run_config/.")
def run(external_ids: tuple[str, ...], job: str, config_file: Path | None) -> None:
    """Materialise users' assets through Dagster (recorded in the instance, shown in the UI).

    Prints each run's id as it starts (follow it with `clone-pipeline progress ID`), and the
    evaluation figures and promotion verdict of any model it trained.
    """
    import yaml

    from clone_pipeline.definitions import JOB_NAMES
    from clone_pipeline.launch.launch import run_job_for_user

    if job not in JOB_NAMES:
        raise click.ClickException(f"no job {job!r}; choose one of: {', '.join(JOB_NAMES)}")
    settings = ready()
    run_config = yaml.safe_load(config_file.read_text()) if config_file else {}
    instance = dagster_instance()
    ok = True
    for external_id in external_ids:
        def started(run_id: str, user: str = external_id) -> None:
            console.print(f"{user}: run {run_id} started ({job}); follow it with "
                          f"clone-pipeline progress {run_id}", soft_wrap=True)

        with console.status(f"running {job} for {external_id}"):
            outcome = run_job_for_user(instance, job, external_id,
                                       {**QUIET_RUN, **run_config}, settings=settings,
                                       on_start=started)
        print_outcome(external_id, outcome)
        _print_trained(settings, outcome.run_id)
        ok &= outcome.success
    sys.exit(0 if ok else 1)


def _print_trained(settings: Settings, run_id: str) -> None:
    """The figures and verdict of each model version the run trained."""
    from clone_pipeline.services.model_versions import trained_in_run

    for v in trained_in_run(settings, run_id):
        if v.adapter_perplexity is None:
            console.print(f"  trained v{v.version}; not evaluated, so not promoted: "
                          f"materialise model_evaluation for it (complete_workflow does both)")
            continue
        console.print(f"  trained v{v.version}: held-out perplexity {v.adapter_perplexity} "
                      f"(base {v.base_perplexity}; lower is better), persona similarity "
                      f"{v.persona_similarity} (control {v.control_similarity}; higher is "
                      f"better)", soft_wrap=True)
        console.print(f"  {'current' if v.current else 'not current'}: {v.note}",
                      soft_wrap=True, markup=False)


@click.command(name="runs")
@click.argument("external_id", required=False)
@click.option("--limit", default=20, show_default=True, help="How many runs, newest first.")
def runs_cmd(external_id: str | None, limit: int) -> None:
    """Recent Dagster runs (of one user, if given): status, times and what they made."""
    from clone_pipeline.launch.runs import recent_runs

    ready()
    found = recent_runs(dagster_instance(), external_id, limit)
    table = Table(title=f"Recent runs{f' of {external_id}' if external_id else ''}",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    columns = ["run id", "job", *([] if external_id else ["user"]), "status", "started",
               "ended", "materialised"]
    for col in columns:
        table.add_column(col, no_wrap=col != "materialised", overflow="fold")
    for r in found:
        table.add_row(r.run_id, r.job, *([] if external_id else [r.user or "-"]), r.status,
                      f"{r.started:%m-%d %H:%M}" if r.started else "-",
                      f"{r.ended:%H:%M:%S}" if r.ended else "-",
                      ", ".join(r.materialized) or "nothing")
    console.print(table if found else "no runs recorded yet")


@click.command()
@click.argument("run_id")
@click.option("--detailed", is_flag=True,
              help="Also show the loss progression and the GPU history.")
@click.option("--follow/--no-follow", default=True, show_default=True,
              help="Keep updating until the run ends.")
def progress(run_id: str, detailed: bool, follow: bool) -> None:
    """Live progress of a training run (its id or the Dagster run id)."""
    from clone_pipeline.launch.progress import follow_progress, read_progress
    from clone_pipeline.launch.runs import UnknownRunError

    settings, instance = ready(), dagster_instance()
    try:
        readings = (follow_progress(settings, instance, run_id, poll_s=2) if follow
                    else iter([read_progress(settings, instance, run_id)]))
        first = _training_started(run_id, readings, follow)
        with Progress(TextColumn("{task.description}"), BarColumn(),
                      TextColumn("{task.percentage:>5.1f}%"), TimeElapsedColumn(),
                      TextColumn("{task.fields[figures]}"), console=console) as bar:
            task = bar.add_task(f"{first.user} ({first.status})", total=100, figures="")
            for found in itertools.chain([first], readings):
                if found.latest:
                    bar.update(task, completed=found.latest["percent_complete"] or 0,
                               description=f"{found.user} ({found.status})",
                               figures=_figures(found.latest))
    except UnknownRunError:
        raise click.ClickException(f"no training run or Dagster run {run_id!r} (clone-pipeline "
                                   f"runs lists recent runs)") from None
    if found.error:
        console.print(f"error: {found.error}")
    history = read_progress(settings, instance, run_id, detailed=True).history \
        if detailed else []
    if history:
        console.print(_history_table(history))


def _training_started(run_id: str, readings, follow: bool):
    """The first reading with a training run: a Dagster run printed by `run` may still be
    preparing data, or queued."""
    found = next(readings)
    if found.row is not None:
        return found
    with console.status(f"Dagster run {run_id} is {found.status}; waiting for its training "
                        f"step") as waiting:
        while found.row is None and follow and not found.finished:
            found = next(readings, found)
            waiting.update(f"Dagster run {run_id} is {found.status}; waiting for its training "
                           f"step")
    if found.row is None:
        raise click.ClickException(f"Dagster run {run_id} is {found.status} and has no "
                                   f"training step {'yet' if not follow else ''}".strip())
    return found


def _figures(m: dict) -> str:
    def show(value, fmt, unit=""):
        return "unavailable" if value is None else f"{value:{fmt}}{unit}"

    gpu = ("GPU unavailable" if m["gpu_utilization"] is None and m["vram_used_mb"] is None
           else f"GPU {show(m['gpu_utilization'], '.0f', '%')} "
                f"{show(m['vram_used_mb'], '.0f', ' MB')} "
                f"{show(m['gpu_temperature_c'], '.0f', ' C')}")
    return (f"step {m['step']} loss {m['loss']:.4f} eval {show(m['eval_loss'], '.4f')} "
            f"{show(m['tokens_per_second'], '.0f', ' tok/s')} "
            f"ETA {show(m['eta_seconds'], '.0f', ' s')} {gpu}")


def _history_table(history: list[dict]) -> Table:
    """Loss progression and GPU history of a run, about 20 rows."""
    table = Table(title="Loss progression and GPU history")
    for col in ("step", "epoch", "loss", "eval loss", "lr", "tok/s", "GPU %", "VRAM MB",
                "temp C"):
        table.add_column(col, justify="right")
    stride = max(1, len(history) // 20)
    rows = history[::stride] + ([history[-1]] if (len(history) - 1) % stride else [])
    for m in rows:
        table.add_row(*(str(v) if v is not None else "-" for v in (
            m["step"], m["epoch"], m["loss"], m["eval_loss"],
            f"{m['learning_rate']:.2e}" if m["learning_rate"] is not None else None,
            m["tokens_per_second"], m["gpu_utilization"], m["vram_used_mb"],
            m["gpu_temperature_c"])))
    return table


COMMANDS = (run, runs_cmd, progress)
