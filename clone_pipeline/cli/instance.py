"""clone-pipeline commands for the data root and its Dagster instance: init, ui and
housekeeping."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from rich import box
from rich.table import Table

from clone_pipeline.cli.common import console, current_settings, ready


@click.command()
@click.option("--instance-config", type=click.Path(dir_okay=False, path_type=Path),
              help="Dagster instance settings to install (default: the project's "
                   "dagster.yaml).")
def init(instance_config: Path | None) -> None:
    """Create the data root, migrate the domain database, write $DAGSTER_HOME/dagster.yaml."""
    from clone_pipeline.db.session import safe_url
    from clone_pipeline.launch.instance import default_template, initialise

    settings = current_settings()
    written = initialise(settings, instance_config or default_template())
    console.print(f"data root      {settings.home}")
    console.print(f"domain db      {safe_url(settings.database_url)}")
    console.print(f"dagster home   {settings.dagster_home} ({written.name} written)")
    storage = "postgres" if os.environ.get("DAGSTER_POSTGRES_URL") else "sqlite"
    console.print(f"dagster store  {storage}")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to serve on.")
@click.option("--port", default=3000, show_default=True, type=int, help="Port to serve on.")
def ui(host: str, port: int) -> None:
    """Open the Dagster UI (webserver and daemon) on this data root's instance.

    Runs `init` first (it refuses an instance that belongs to another data root). Ctrl-C or
    SIGTERM stops the UI, the daemon and any runs in progress within seconds (a training run
    checkpoints and resumes next time); `dagster dev` alone leaves runs going.
    """
    from clone_pipeline.launch.dagster_dev import serve
    from clone_pipeline.launch.instance import default_template, initialise

    initialise(current_settings(), default_template())
    sys.exit(serve(["-m", "clone_pipeline.definitions", "-h", host, "-p", str(port)]))


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

    report = housekeep(ready(), retention_days)
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


COMMANDS = (init, ui, housekeeping)
