"""What every command module shares: the consoles, how quiet a run is, the settings of a
ready data root and its Dagster instance, and the line a finished run prints."""

from __future__ import annotations

import os
import sys

from rich.console import Console

from clone_pipeline.settings import Settings, load_settings

# Piped output (make demo, CI logs) gets a readable width instead of rich's 80 columns.
console = Console(width=None if sys.stdout.isatty() else 120)
err_console = Console(stderr=True)
# In-process runs log every Dagster event to the console; the UI keeps the full log, so the
# CLI shows none of it unless --verbose (see quiet_libraries).
QUIET_RUN = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
# Library chatter that interleaves the tables: deprecation notices, weight-loading bars,
# advisory logs. Environment variables, so the training child process inherits them too;
# set only where the user has not set them.
QUIET_ENV = {
    "PYTHONWARNINGS": "ignore::FutureWarning,ignore::DeprecationWarning",
    "TRANSFORMERS_VERBOSITY": "error",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # transformers' own bars follow this too
    "TQDM_DISABLE": "1",
    "TOKENIZERS_PARALLELISM": "false",  # its fork warning
}


def quiet_libraries(verbose: bool) -> None:
    """The one place that decides what besides our own tables reaches the terminal."""
    if verbose:
        QUIET_RUN["loggers"]["console"]["config"]["log_level"] = "DEBUG"
        return
    import warnings

    for name, value in QUIET_ENV.items():
        os.environ.setdefault(name, value)
    for category in (FutureWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category)


def current_settings() -> Settings:
    settings = load_settings()
    # Dagster reads DAGSTER_HOME itself: point it at our instance folder unless the user did.
    os.environ.setdefault("DAGSTER_HOME", str(settings.dagster_home))
    return settings


def ready(create: bool = False) -> Settings:
    """The settings of a data root ready for a command. Commands that add material
    (*create*) initialise a fresh data root; the others refuse a missing one instead of
    showing an empty one. The data root and the Dagster instance must belong together, and
    an existing root must be at the current schema (only `init` migrates)."""
    from clone_pipeline.db.session import require_current_schema
    from clone_pipeline.launch.instance import default_template, initialise
    from clone_pipeline.services.pairing import check_pairing, require_data_root

    settings = current_settings()
    check_pairing(settings)
    if not create:
        require_data_root(settings)
    if not (settings.dagster_home / "dagster.yaml").exists():
        initialise(settings, default_template())
    else:
        settings.ensure_dirs()
        require_current_schema(settings.database_url)
    return settings


def dagster_instance():
    """The Dagster instance, through the launch layer (imported when a command needs it)."""
    from clone_pipeline.launch.instance import current_instance

    return current_instance()


def operating_errors() -> tuple[type[Exception], ...]:
    """What launching, following or queueing refuses with a message that says what to do."""
    from clone_pipeline.launch.dagster_api import DagsterUnavailableError, LaunchError
    from clone_pipeline.services.queues import QueueError
    from clone_pipeline.services.workflows import UnknownWorkflowError

    return DagsterUnavailableError, LaunchError, QueueError, UnknownWorkflowError


def print_outcome(external_id: str, outcome) -> None:
    """One line per run (`run` and `demo`), then the checks that stopped it or its error."""
    if outcome.success:
        status = "[green]succeeded[/green]"
    elif outcome.failed_checks:
        status = "[yellow]stopped by a check[/yellow]"
    else:
        status = "[red]failed[/red]"
    console.print(f"{external_id}: run {outcome.run_id} {status}; materialised "
                  f"{', '.join(outcome.materialized) or 'nothing'}")
    for check, why in outcome.failed_checks.items():
        console.print(f"  {check}: {why}", markup=False, highlight=False)
    if outcome.error and not outcome.failed_checks:
        console.print(f"  error: {outcome.error}")
