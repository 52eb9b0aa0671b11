"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from clone_pipeline.db.models import Base
from clone_pipeline.db.session import alembic_config, get_engine, migrate

SEED_TABLES = {
    "training_runs", "model_versions", "voice_profiles", "voice_llm_integrations",
    "training_datasets", "formatted_training_data", "model_deployments", "inference_logs",
    "training_workflows", "training_metrics",
    "users", "responses", "life_stories", "milestone_messages", "voice_recordings",
}


def test_migrations_match_models(settings):
    engine = get_engine(settings.database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                Base.metadata)
    assert diff == []
    assert set(inspect(engine).get_table_names()) >= SEED_TABLES


def test_migrate_is_idempotent_and_reversible(settings):
    migrate(settings.database_url)  # second run: nothing to do, no error
    engine = get_engine(settings.database_url)
    command.downgrade(alembic_config(settings.database_url), "base")
    assert not SEED_TABLES & set(inspect(engine).get_table_names())
    migrate(settings.database_url)
    assert set(inspect(engine).get_table_names()) >= SEED_TABLES


def test_pipeline_tables_record_the_dagster_run_id():
    for name in ("training_datasets", "formatted_training_data", "training_runs",
                 "model_versions", "voice_profiles", "voice_llm_integrations",
                 "model_deployments", "training_workflows", "training_metrics"):
        assert "dagster_run_id" in Base.metadata.tables[name].columns, name
