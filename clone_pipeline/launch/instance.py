"""Set up the data root, the domain schema and the Dagster instance folder, and open the
instance for the commands and the HTTP API (which never touch Dagster themselves)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import dagster as dg

from clone_pipeline.db.session import migrate, psycopg2_url
from clone_pipeline.files import atomic_path
from clone_pipeline.launch.names import USERS_PARTITIONS
from clone_pipeline.launch.queues import apply_gpu_slots
from clone_pipeline.services.pairing import check_pairing, record_pairing
from clone_pipeline.settings import Settings

POSTGRES_STORAGE = """
storage:
  postgres:
    postgres_url:
      env: DAGSTER_POSTGRES_URL
"""


def write_dagster_yaml(settings: Settings, template: Path | None,
                       env: dict[str, str] | None = None) -> Path:
    """$DAGSTER_HOME/dagster.yaml from *template* (the repo's dagster.yaml), plus Postgres
    storage when DAGSTER_POSTGRES_URL is set. Returns the written path."""
    env = dict(os.environ) if env is None else env
    pg_url = env.get("DAGSTER_POSTGRES_URL")
    if pg_url and psycopg2_url(pg_url) != pg_url:
        raise ValueError("DAGSTER_POSTGRES_URL must name the psycopg2 driver, e.g. "
                         "postgresql+psycopg2://user@host:5432/dagster (dagster-postgres "
                         "needs psycopg2; a bare postgresql:// URL selects psycopg 3)")
    text = template.read_text(encoding="utf-8") if template and template.is_file() else ""
    if pg_url and "\nstorage:" not in f"\n{text}":
        text = text.rstrip("\n") + "\n" + POSTGRES_STORAGE
    target = settings.dagster_home / "dagster.yaml"
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return target


def initialise(settings: Settings, template: Path | None = None) -> Path:
    """Create folders, migrate the domain database, write the Dagster instance config, create
    Dagster's storage and record the pair (refused if either side belongs to another)."""
    check_pairing(settings)
    settings.ensure_dirs()
    migrate(settings.database_url)
    written = write_dagster_yaml(settings, template)
    prepare_dagster_storage(settings)
    record_pairing(settings)
    return written


def prepare_dagster_storage(settings: Settings) -> None:
    """Create and stamp Dagster's run, event-log and schedule storage now, in one process,
    and set the GPU pool's limit.

    Left to `dagster dev`, the webserver, daemon and code server all create a fresh SQLite
    instance at once and can stamp its Alembic table twice ("more than one head").
    """
    with dg.DagsterInstance.from_config(str(settings.dagster_home)) as instance:
        instance.get_runs(limit=1)
        instance.get_dynamic_partitions(USERS_PARTITIONS)
        instance.all_instigator_state()
        apply_gpu_slots(settings, instance)


def default_template() -> Path | None:
    """The project's dagster.yaml: beside the package in a checkout, or in the working dir."""
    for candidate in (Path(__file__).resolve().parents[2] / "dagster.yaml",
                      Path.cwd() / "dagster.yaml"):
        if candidate.is_file():
            return candidate
    return None


def current_instance() -> dg.DagsterInstance:
    """The instance of $DAGSTER_HOME (the CLI points it at the data root's unless set)."""
    return dg.DagsterInstance.get()


class SharedInstance:
    """The data root's Dagster instance, opened on first use and shared by the threads of a
    long-running process (the HTTP API)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._instance: dg.DagsterInstance | None = None
        self._lock = threading.Lock()

    def get(self) -> dg.DagsterInstance:
        with self._lock:
            if self._instance is None:
                self._instance = dg.DagsterInstance.from_config(str(self.settings.dagster_home))
            return self._instance

    def close(self) -> None:
        if self._instance is not None:
            self._instance.dispose()
