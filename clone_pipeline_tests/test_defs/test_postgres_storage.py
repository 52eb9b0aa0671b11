"""Dagster's own storage in PostgreSQL (dagster-postgres), configured as `init` writes it."""

import dagster as dg
import pytest
from sqlalchemy import create_engine, text

from clone_pipeline.launch.instance import default_template, write_dagster_yaml
from clone_pipeline.launch.launch import run_job_for_user
from clone_pipeline.settings import load_settings


@pytest.fixture
def dagster_pg_url(new_pg_database):
    return new_pg_database()  # its own database, apart from the domain tables


def test_runs_and_events_live_in_postgres(env_settings, import_persona, dagster_pg_url,
                                          tmp_path, monkeypatch):
    settings = load_settings({"CLONE_HOME": str(env_settings.home),
                              "DAGSTER_HOME": str(tmp_path / "dagster_home")})
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", dagster_pg_url.replace("+psycopg2", ""))
    with pytest.raises(ValueError, match="psycopg2"):  # the bare-URL trap, caught early
        write_dagster_yaml(settings, default_template())
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", dagster_pg_url)
    config = write_dagster_yaml(settings, default_template())
    assert "postgres_url" in config.read_text() and "run_monitoring" in config.read_text()

    import_persona("margaret-ellis")
    with dg.DagsterInstance.from_config(str(settings.dagster_home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        outcome = run_job_for_user(instance, "data_only", "margaret-ellis")
    assert outcome.success, outcome.error

    # A fresh instance (another process would do the same) reads the run back.
    with dg.DagsterInstance.from_config(str(settings.dagster_home)) as instance:
        run = instance.get_run_by_id(outcome.run_id)
        assert run.status == dg.DagsterRunStatus.SUCCESS
        assert run.tags["dagster/partition"] == "margaret-ellis"
        records = instance.fetch_materializations(
            dg.AssetKey("formatted_datasets"), limit=1).records
        assert records and records[0].run_id == outcome.run_id
    with create_engine(dagster_pg_url).connect() as conn:
        assert conn.execute(text("select count(*) from runs where run_id = :r"),
                            {"r": outcome.run_id}).scalar() == 1
