"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

import uuid

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


def test_0003_upgrade_keeps_each_users_newest_version_current(settings):
    """A database at 0002 (before promotion) keeps serving the version it served: the
    newest of each user becomes current; a user without versions gets none."""
    from sqlalchemy import insert, select

    from clone_pipeline.db.models import ModelVersion, User

    url = settings.database_url
    command.downgrade(alembic_config(url), "0002")
    engine = get_engine(url)
    assert "promoted_at" not in {c["name"] for c in inspect(engine).get_columns(
        "model_versions")}
    users, versions = User.__table__, ModelVersion.__table__
    with engine.begin() as conn:
        for name, count in (("ada", 2), ("bo", 1), ("cy", 0)):
            user = uuid.uuid4()
            conn.execute(insert(users).values(id=user, external_id=name, display_name=name))
            for number in range(1, count + 1):
                conn.execute(insert(versions).values(id=uuid.uuid4(), user_id=user,
                                                     version=number, base_model="local-tiny"))
    migrate(url)
    with engine.connect() as conn:
        rows = conn.execute(select(users.c.external_id, versions.c.version,
                                   versions.c.promoted_at, versions.c.promotion_note)
                            .join(versions, versions.c.user_id == users.c.id)).all()
    promoted = {(name, number) for name, number, at, _ in rows if at is not None}
    assert promoted == {("ada", 2), ("bo", 1)}
    assert all(note.startswith("migration 0003") for *_, at, note in rows if at)
    command.downgrade(alembic_config(url), "0002")  # and back, keeping the rows
    with engine.connect() as conn:
        assert conn.execute(select(versions.c.version)).scalars().all()
    migrate(url)


def test_0007_adds_what_a_recording_tells_and_keeps_older_recordings(settings):
    """Recordings from before 0007 tell nothing (both links null); downgrading keeps them."""
    from sqlalchemy import insert, select

    from clone_pipeline.db.models import User, VoiceRecording

    url = settings.database_url
    command.downgrade(alembic_config(url), "0006")
    engine = get_engine(url)
    assert "response_id" not in {c["name"] for c in inspect(engine).get_columns(
        "voice_recordings")}
    user = uuid.uuid4()
    recording = {"id": uuid.uuid4(), "user_id": user, "item_id": "v-001", "text": "Hello.",
                 "file_path": "audio/a/x.wav", "sha256": "0" * 64, "original_name": "x.wav",
                 "audio_format": "wav/pcm_s16le", "sample_rate": 16000, "channels": 1,
                 "duration_s": 1.0, "size_bytes": 32044}
    recordings = VoiceRecording.__table__
    with engine.begin() as conn:  # only the columns 0006 has (the links have no default)
        conn.execute(insert(User.__table__).values(id=user, external_id="ada",
                                                   display_name="Ada"))
        conn.execute(insert(recordings).values(**recording))
    migrate(url)
    with engine.connect() as conn:
        row = conn.execute(select(recordings.c.item_id, recordings.c.response_id,
                                  recordings.c.story_id)).one()
    assert tuple(row) == ("v-001", None, None)
    command.downgrade(alembic_config(url), "0006")
    with engine.connect() as conn:
        assert conn.execute(select(recordings.c.item_id)).scalars().all() == ["v-001"]
    migrate(url)
