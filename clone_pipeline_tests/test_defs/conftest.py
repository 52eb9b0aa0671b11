"""Fixtures for the Dagster layer: a temporary instance and env-configured resources."""

import dagster as dg
import pytest

from clone_pipeline.demo import PERSONAS_DIR
from clone_pipeline.services.ingest import import_export


def _point_env_at(settings, monkeypatch):
    monkeypatch.setenv("CLONE_HOME", str(settings.home))
    monkeypatch.setenv("CLONE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CLONE_MODELS_DIR", str(settings.models_dir))
    # Its own instance folder: one inherited from the shell (make exports DAGSTER_HOME)
    # belongs to another data root, and a command that opens both would rightly refuse.
    monkeypatch.setenv("DAGSTER_HOME", str(settings.dagster_home))
    return settings


@pytest.fixture
def env_settings(settings, monkeypatch):
    """Point the definitions' env-driven CloneSettings at the test's data root and database
    (once on SQLite, once on PostgreSQL)."""
    return _point_env_at(settings, monkeypatch)


@pytest.fixture
def sqlite_env_settings(sqlite_settings, monkeypatch):
    """The same on SQLite only, for slow tests whose database side is covered elsewhere."""
    return _point_env_at(sqlite_settings, monkeypatch)


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


@pytest.fixture
def import_persona(env_settings):
    def do(name: str):
        return import_export(PERSONAS_DIR / name, env_settings)

    return do
