"""clone-pipeline commands that bring material in: import (user exports), schema (the
contract they follow) and facts (a person's held-out fact sheet)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.table import Table

from clone_pipeline.cli.common import console, err_console, ready


@click.command(name="import")
@click.argument("paths", nargs=-1, required=True,
                type=click.Path(exists=False, path_type=Path))
@click.option("--prune", is_flag=True,
              help="Delete stored items that are no longer in the export.")
def import_cmd(paths: tuple[Path, ...], prune: bool) -> None:
    """Import user exports (export.json, a folder holding one, or a .zip).

    Each export is one transaction: if anything is wrong, every problem is listed and nothing
    is written. Re-importing the same export changes nothing.
    """
    from clone_pipeline.ingest import ExportError
    from clone_pipeline.services.ingest import import_export

    settings = ready(create=True)
    failed = False
    for path in paths:
        try:
            summary = import_export(path, settings, prune=prune)
        except ExportError as exc:
            err_console.print(str(exc), style="red", markup=False, highlight=False,
                              soft_wrap=True)  # one line per problem, however long
            failed = True
            continue
        _print_import(path, summary)
    if failed:
        sys.exit(2)


@click.command(name="schema")
def schema_cmd() -> None:
    """Print the JSON Schema of the user export the importer validates with (the contract
    itself, with its semantics, is docs/user-export.md; the same schema is
    docs/user-export.schema.json)."""
    from clone_pipeline.ingest.schema import schema_json

    click.echo(schema_json(), nl=False)


def _print_import(path: Path, summary) -> None:
    state = ("new user" if summary.user_created
             else "updated" if summary.changed else "unchanged")
    table = Table(title=f"{summary.external_id} ({state}) from {path}")
    for col in ("list", "inserted", "updated", "unchanged", "pruned"):
        table.add_column(col, justify="right" if col != "list" else "left")
    for name, c in summary.lists.items():
        table.add_row(name, str(c.inserted), str(c.updated), str(c.unchanged), str(c.pruned))
    console.print(table)
    if summary.audio_files_copied:
        console.print(f"{summary.audio_files_copied} audio file(s) copied into the data root")


@click.command()
@click.argument("external_id")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def facts(external_id: str, path: Path) -> None:
    """Keep PATH as the person's fact sheet: held-out questions about her life (with the
    words a right answer contains) and about things she never told, which model_evaluation
    asks every version (README, 'Fidelity'). Never trained on."""
    from clone_pipeline.memory.fidelity import FactSheetError
    from clone_pipeline.services.fidelity import store_fact_sheet
    from clone_pipeline.services.users import require_user

    settings = ready()
    require_user(settings, external_id)
    try:
        sheet = store_fact_sheet(settings, external_id, path)
    except FactSheetError as exc:
        raise click.ClickException(str(exc)) from None
    console.print(f"{external_id}: {len(sheet.told)} told and {len(sheet.never_told)} "
                  f"never-told questions kept; the next model_evaluation measures them")


COMMANDS = (import_cmd, schema_cmd, facts)
