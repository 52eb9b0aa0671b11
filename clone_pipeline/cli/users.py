"""clone-pipeline commands about the people in the data root: users (where each stands) and
remove-user (everything stored for one, gone)."""

from __future__ import annotations

import json

import click
from rich.markup import escape
from rich.table import Table

from clone_pipeline.cli.common import console, dagster_instance, ready


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def users(as_json: bool) -> None:
    """Where each user stands: material, data readiness, formatted dataset, adapter (version
    and held-out perplexity), voice profile and deployment."""
    from clone_pipeline.services.users import overview

    settings = ready()
    rows = overview(settings)
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    console.print(_status_table(rows))


def _status_table(rows: list[dict]) -> Table:
    table = Table(title="Users (items: responses/stories/messages/recordings)",
                  caption="formatted: dataset version, train/eval examples, formats; adapter: "
                          "version, held-out perplexity of the adapter / its base (lower is "
                          "better); deployment: name, served version, status")
    for col in ("user", "items r/s/m/v"):
        table.add_column(col, no_wrap=True)
    table.add_column("data")
    for col in ("formatted", "adapter", "voice profile", "deployment"):
        table.add_column(col, no_wrap=True)
    for r in rows:
        items = "/".join(str(r[k]) for k in ("responses", "life_stories", "milestone_messages",
                                             "voice_recordings"))
        if r["ready"] is None:
            data = "not collected"
        elif r["ready"]:
            data = f"[green]ready[/green] (v{r['dataset_version']})"
        else:
            why = "; ".join((r["readiness"] or {}).get("reasons", []))
            data = f"[yellow]not ready yet[/yellow]: {escape(why)} (v{r['dataset_version']})"
        f = r["formatted"]
        formatted = f"v{f['dataset_version']}: {f['train']}/{f['eval']}, {f['formats']}" \
            if f else "-"
        m = r["model"]
        if m is None:
            adapter = "-"
        elif m["adapter_perplexity"] is None:
            adapter = f"v{m['version']}: not evaluated"
        else:
            adapter = f"v{m['version']}: {m['adapter_perplexity']:.1f} / {m['base_perplexity']:.1f}"
        if m is not None and m["latest_version"] != m["version"]:
            adapter += f"\n(v{m['latest_version']} not current)"
        voice, dep = r["voice_profile"], r["deployment"]
        table.add_row(r["external_id"], items, data, formatted, adapter,
                      f"yes, {voice['created_at']:%Y-%m-%d}" if voice else "no",
                      f"{escape(dep['name'])} (v{dep['version']}, {dep['status']})" if dep
                      else "none")
    return table


@click.command(name="remove-user")
@click.argument("external_id")
@click.option("--yes", is_flag=True, help="Do it without asking.")
def remove_user(external_id: str, yes: bool) -> None:
    """Delete a user: their rows in every domain table, their files and their partition."""
    from clone_pipeline.files import check_id
    from clone_pipeline.launch.users import remove_user as remove
    from clone_pipeline.services.users import require_user

    settings = ready()
    check_id(external_id)
    require_user(settings, external_id)
    if not yes:
        click.confirm(f"Delete everything stored for {external_id}?", abort=True)
    remove(dagster_instance(), settings, external_id)
    console.print(f"removed {external_id}")


COMMANDS = (users, remove_user)
