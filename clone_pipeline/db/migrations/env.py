"""Alembic environment: runs migrations against the URL set by ``db.session.alembic_config``."""

from alembic import context

from clone_pipeline.db.models import Base
from clone_pipeline.db.session import get_engine

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"),
                      target_metadata=target_metadata, literal_binds=True,
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    engine = get_engine(url) if url else None
    assert engine is not None, "sqlalchemy.url must be set"
    with engine.connect() as connection:
        # SQLite cannot ALTER most things in place: batch mode rebuilds tables safely.
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=True, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()



if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
