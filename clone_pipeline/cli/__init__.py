"""The clone-pipeline command: set up, import material, run the pipeline, inspect users.

One module per command group, each parsing and printing only (the work is in ``services``
and ``launch``); ``common`` holds what they share. This module is the
group itself and the one place the commands are registered.
"""

from __future__ import annotations

import click

from clone_pipeline.cli import (
    data,
    demo,
    instance,
    queues,
    runs,
    serving,
    tokens,
    training,
    users,
    voice,
    workflows,
)
from clone_pipeline.cli.common import quiet_libraries


class _Group(click.Group):
    """Turns the errors that say what to do (an unknown user, a schema behind, an id that
    would leave the data root) into one line instead of a traceback, for every command."""

    def invoke(self, ctx: click.Context):
        from clone_pipeline.db.session import SchemaBehindError
        from clone_pipeline.db.users import UnknownUserError
        from clone_pipeline.files import UnsafePathError
        from clone_pipeline.services.pairing import NoDataRootError, PairingError

        try:
            return super().invoke(ctx)
        except (UnknownUserError, SchemaBehindError, UnsafePathError, NoDataRootError,
                PairingError) as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="clone_pipeline")
@click.option("-v", "--verbose", is_flag=True,
              help="Also show Dagster's run log and the libraries' warnings and progress bars.")
def main(verbose: bool) -> None:
    """Turn a person's written answers, stories, messages and recordings into a personal
    language model, orchestrated by Dagster.

    Settings come from the environment: CLONE_HOME (data root), CLONE_DATABASE_URL (domain
    database, default SQLite under the data root), DAGSTER_HOME (Dagster instance, default
    CLONE_HOME/dagster) and DAGSTER_POSTGRES_URL (Dagster storage in PostgreSQL).
    """
    quiet_libraries(verbose)


for _module in (instance, data, users, runs, training, voice, demo, serving, tokens,
                workflows, queues):
    for _command in _module.COMMANDS:
        main.add_command(_command)
