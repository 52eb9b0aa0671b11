"""clone-pipeline commands about trained models and the hardware that trains them: models
(a user's versions), promote (choose the current one) and gpu."""

from __future__ import annotations

import click
from rich.table import Table

from clone_pipeline.cli.common import console, ready


@click.command()
@click.argument("external_id")
def models(external_id: str) -> None:
    """A user's model versions with their held-out figures; the current one is marked."""
    from clone_pipeline.services.model_versions import list_versions

    settings = ready()
    versions = list_versions(settings, external_id)
    if not versions:
        console.print(f"{external_id} has no model versions yet (clone-pipeline run "
                      f"{external_id} --job complete_workflow)")
        return
    table = Table(title=f"Model versions of {external_id} (perplexity: lower is better; "
                        f"similarity: higher is better)")
    for col in ("version", "current", "created", "base model", "held-out perplexity (base)",
                "persona similarity (control)"):
        table.add_column(col)
    for v in versions:
        def show(value, other):
            return "-" if value is None else f"{value} ({other})"

        table.add_row(f"v{v.version}", "[green]current[/green]" if v.current else "",
                      f"{v.created_at:%Y-%m-%d %H:%M}", v.base_model,
                      show(v.adapter_perplexity, v.base_perplexity),
                      show(v.persona_similarity, v.control_similarity))
    console.print(table)
    console.print("Why each was promoted, or not:")
    for v in versions:
        console.print(f"  v{v.version}: {v.note or 'not evaluated'}", markup=False,
                      soft_wrap=True)


@click.command()
@click.argument("external_id")
@click.argument("version")
def promote(external_id: str, version: str) -> None:
    """Make VERSION (3 or v3) the user's current model version, e.g. to roll back."""
    from clone_pipeline.services.model_versions import UnknownVersionError
    from clone_pipeline.services.model_versions import promote as promote_version

    number = version.lower().removeprefix("v")
    if not number.isdigit():
        raise click.ClickException(f"VERSION must be a number such as 3 or v3, not "
                                   f"{version!r}")
    settings = ready()
    try:
        note = promote_version(settings, external_id, int(number))
    except UnknownVersionError as exc:
        raise click.ClickException(str(exc)) from exc
    console.print(f"{external_id}: v{int(number)} is current ({note})", markup=False)


@click.command()
@click.option("--profile", default="auto", show_default=True,
              help="Hardware profile to resolve: auto, cpu, rtx5090, a100, h100.")
def gpu(profile: str) -> None:
    """GPU status read through NVML, and the training profile this machine gets."""
    from clone_pipeline.training.hardware import select_profile

    try:
        report = select_profile(profile)
    except (ValueError, RuntimeError) as exc:  # unknown profile, or a GPU profile on a CPU
        raise click.ClickException(str(exc)) from exc
    p = report.profile
    console.print(f"profile    {p.name} ({p.device}, {p.precision}, attention {p.attention}, "
                  f"gradient checkpointing {'on' if p.gradient_checkpointing else 'off'})")
    console.print(f"NVML       {report.nvml}")
    for g in report.gpus:
        def show(v, unit):
            return "unavailable" if v is None else f"{v:.0f}{unit}"

        console.print(f"GPU {g.index}      {g.name}: {g.memory_used_mb:.0f}/"
                      f"{g.memory_total_mb:.0f} MB, {show(g.utilization_pct, '%')}, "
                      f"{show(g.temperature_c, ' C')}, {show(g.power_w, ' W')}")
    if not report.gpus:
        console.print("GPUs       none found")


COMMANDS = (models, promote, gpu)
