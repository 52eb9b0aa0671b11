"""Engines, sessions and schema migration for the domain database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def psycopg2_url(url: str) -> str:
    """Pin a PostgreSQL URL to psycopg2, the driver installed with dagster-postgres.

    SQLAlchemy 2.1 maps a bare ``postgresql://`` URL to psycopg 3, which is not installed
    (and whose server-side binding breaks dagster-postgres' NOTIFY).
    """
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg2")
    return parsed.render_as_string(hide_password=False)


@lru_cache(maxsize=8)
def get_engine(url: str) -> Engine:
    """One engine per URL. Statement parameters are hidden from errors and logs: they are a
    person's text."""
    url = psycopg2_url(url)
    if url.startswith("sqlite"):
        db_path = make_url(url).database
        if db_path and db_path != ":memory:":
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, hide_parameters=True)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")  # SQLite ignores FKs (and cascades) without it
    cur.execute("PRAGMA journal_mode=WAL")  # readers (Dagster, CLI) do not block the importer
    # Deleted rows are overwritten with zeros, not left readable in free pages (a removed
    # person's text must not survive in the file); some SQLite builds default to off.
    cur.execute("PRAGMA secure_delete=ON")
    cur.close()


@lru_cache(maxsize=8)
def _session_factory(url: str) -> sessionmaker:
    """One per URL: building a sessionmaker sets up its event dispatch, which cost more than
    the gateway's token and deployment lookups themselves."""
    return sessionmaker(get_engine(url), expire_on_commit=False)


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back on any exception."""
    session = _session_factory(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", psycopg2_url(url).replace("%", "%%"))
    return cfg


def migrate(url: str, revision: str = "head") -> None:
    """Bring the domain schema up to *revision* (idempotent)."""
    command.upgrade(alembic_config(url), revision)


def reclaim_deleted_rows(url: str, tables: list[str]) -> None:
    """Make deleted rows unreadable at the storage level, after a removal.

    PostgreSQL keeps deleted row versions in its pages until the space is reused, so the
    *tables* are rewritten (VACUUM FULL, which locks each briefly; they hold one family's
    material, so this is quick). SQLite already zeroes deleted rows (secure_delete); its
    write-ahead log is checkpointed and truncated so no frame keeps an old page.
    """
    engine = get_engine(url)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if engine.dialect.name == "postgresql":
            for table in tables:
                conn.exec_driver_sql(f'VACUUM FULL "{table}"')
        elif engine.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def analyze_tables(url: str, tables: list[str]) -> bool:
    """VACUUM ANALYZE *tables* on PostgreSQL (True); SQLite needs nothing (False)."""
    engine = get_engine(url)
    if engine.dialect.name != "postgresql":
        return False
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in tables:
            conn.exec_driver_sql(f'VACUUM ANALYZE "{table}"')
    return True


class SchemaBehindError(RuntimeError):
    """The domain database is not at the schema this code expects."""


@lru_cache(maxsize=8)
def require_current_schema(url: str) -> None:
    """Refuse to work on a domain database whose schema is not at head (checked once per
    process). Only `clone-pipeline init` migrates, so run processes never race to."""
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    with get_engine(url).connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    if current != head:
        state = "is empty" if current is None else f"is at revision {current}"
        raise SchemaBehindError(
            f"the domain database {safe_url(url)} {state}, this code needs {head}: run "
            f"`clone-pipeline init` (it migrates, keeping every row)")


def safe_url(url: str) -> str:
    """The URL with its password hidden, for messages."""
    return make_url(url).render_as_string(hide_password=True)
