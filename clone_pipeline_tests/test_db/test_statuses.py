"""The database itself limits each pipeline table's status to its enum (migration 0002)."""

from __future__ import annotations

import re
import sqlite3
import uuid
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Connection, delete, insert, inspect, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from clone_pipeline.db.models import Base
from clone_pipeline.db.session import alembic_config, get_engine, migrate
from clone_pipeline.db.statuses import STATUS_COLUMNS

TABLES = Base.metadata.tables


def _add(conn: Connection, table: str, **values: Any) -> uuid.UUID:
    """Insert one row (model defaults fill the rest) and return its id."""
    values.setdefault("id", uuid.uuid4())
    conn.execute(insert(TABLES[table]).values(**values))
    return values["id"]


def _parents(conn: Connection) -> dict[str, uuid.UUID]:
    """A user, a model version and a deployment: what every status table needs to refer to."""
    user = _add(conn, "users", external_id=f"u-{uuid.uuid4().hex[:8]}", display_name="Ada")
    version = _add(conn, "model_versions", user_id=user, version=1, base_model="local-tiny")
    deployment = _add(conn, "model_deployments", user_id=user, model_version_id=version,
                      name="ada-v1")
    return {"user": user, "version": version, "deployment": deployment}


def _status_row(table: str, parents: dict[str, uuid.UUID], status: str) -> dict[str, Any]:
    """The fewest columns a valid row of *table* needs, with the given status."""
    row: dict[str, Any] = {"user_id": parents["user"], "status": status}
    if table == "model_versions":
        row.update(version=2, base_model="local-tiny")
    elif table == "model_deployments":
        row.update(model_version_id=parents["version"], name="ada-v2")
    elif table == "inference_logs":
        row.update(deployment_id=parents["deployment"])
    return row


def _allowed(sql: str) -> set[str]:
    """The quoted literals of a CHECK's text, however the database rewrote it."""
    return set(re.findall(r"'([^']*)'", sql))


@pytest.mark.parametrize("table", sorted(STATUS_COLUMNS))
def test_unknown_status_is_refused_by_the_database(settings, table):
    engine = get_engine(settings.database_url)
    with engine.begin() as conn:
        parents = _parents(conn)
    first = next(iter(STATUS_COLUMNS[table]))
    # "done" is no table's status; the member's name is not its value either
    for bad in ("done", first.name, ""):
        with (pytest.raises(IntegrityError, match=f"ck_{table}_status"),
              engine.begin() as conn):
            _add(conn, table, **_status_row(table, parents, bad))
        with engine.begin() as conn:  # nor can an existing row be moved to it
            row = _add(conn, table, **_status_row(table, parents, first))
        with (pytest.raises(IntegrityError, match=f"ck_{table}_status"),
              engine.begin() as conn):
            conn.execute(update(TABLES[table]).where(TABLES[table].c.id == row)
                         .values(status=bad))


@pytest.mark.parametrize("table", sorted(STATUS_COLUMNS))
def test_every_enum_status_is_accepted(settings, table):
    engine = get_engine(settings.database_url)
    with engine.begin() as conn:
        parents = _parents(conn)
        for status in STATUS_COLUMNS[table]:
            _add(conn, table, **_status_row(table, parents, status))
        # a row given no status gets the model's default, an enum member the check accepts
        default = _status_row(table, parents, "")
        del default["status"]
        _add(conn, table, **default)
    with engine.connect() as conn:
        stored = conn.execute(select(TABLES[table].c.status)).scalars().all()
    assert set(stored) == set(STATUS_COLUMNS[table])


def test_models_and_migrated_database_check_the_same_statuses(settings):
    """compare_metadata does not compare CHECK constraints; this does."""
    inspector = inspect(get_engine(settings.database_url))
    for table, enum in STATUS_COLUMNS.items():
        (model_check,) = TABLES[table].c.status.constraints
        assert model_check.name == f"ck_{table}_status"
        assert _allowed(str(model_check.sqltext)) == {m.value for m in enum}, table
        db_checks = {c["name"]: c["sqltext"] for c in inspector.get_check_constraints(table)}
        assert _allowed(db_checks[f"ck_{table}_status"]) == {m.value for m in enum}, table


# --------------------------------------------------- downgrade and upgrade with data present


def _graph(conn: Connection) -> dict[str, uuid.UUID]:
    """One user's rows in every table, linked by each kind of foreign key the schema has."""
    ids = _parents(conn)
    user = ids["user"]
    ids["dataset"] = _add(conn, "training_datasets", user_id=user, version=1, path="d.jsonl",
                          sha256="0" * 64, total_examples=3, total_words=30, ready=True,
                          config={"lang": "en"})
    ids["run"] = _add(conn, "training_runs", user_id=user, dataset_id=ids["dataset"],
                      status="completed", config={"lr": 1e-4})
    _add(conn, "training_metrics", training_run_id=ids["run"], step=10, loss=1.5)
    conn.execute(update(TABLES["model_versions"]).where(TABLES["model_versions"].c.id
                                                         == ids["version"])
                 .values(training_run_id=ids["run"], status="evaluated"))
    conn.execute(update(TABLES["model_deployments"]).values(status="active"))
    _add(conn, "inference_logs", user_id=user, deployment_id=ids["deployment"], latency_ms=12.5)
    ids["profile"] = _add(conn, "voice_profiles", user_id=user, status="ready")
    _add(conn, "voice_llm_integrations", user_id=user, voice_profile_id=ids["profile"],
         status="passed")
    _add(conn, "training_workflows", user_id=user, status="running", stages={"train": "ok"})
    _add(conn, "responses", user_id=user, item_id="r1", category="c", question="q?", answer="a")
    return ids


def _rows(conn: Connection) -> dict[str, list]:
    """Every row, in the columns the database has at its present revision."""
    inspector = inspect(conn)
    rows = {}
    for name, t in TABLES.items():
        if not inspector.has_table(name):  # added by a later revision
            continue
        present = {c["name"] for c in inspector.get_columns(name)}
        rows[name] = conn.execute(select(*[c for c in t.c if c.name in present])
                                  .order_by(t.c.id)).all()
    return rows


def _structure(engine) -> dict[str, Any]:
    """Indexes and foreign keys (with their ON DELETE) as the database reports them."""
    inspector = inspect(engine)
    return {name: (sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]))
                          for i in inspector.get_indexes(name)),
                   sorted((f["name"], tuple(f["constrained_columns"]), f["referred_table"],
                           (f.get("options") or {}).get("ondelete"))
                          for f in inspector.get_foreign_keys(name)))
            for name in TABLES if inspector.has_table(name)}


def _status_checks(engine) -> set[str]:
    inspector = inspect(engine)
    return {c["name"] for name in STATUS_COLUMNS for c in inspector.get_check_constraints(name)}


def test_downgrade_and_upgrade_keep_rows_indexes_and_cascades(settings):
    engine = get_engine(settings.database_url)
    with engine.begin() as conn:
        ids = _graph(conn)
    command.downgrade(alembic_config(settings.database_url), "0002")  # before later columns
    with engine.connect() as conn:
        rows = _rows(conn)
    structure = _structure(engine)
    assert all(rows[t] for t in [*STATUS_COLUMNS, "training_metrics", "training_datasets"])
    assert structure["training_runs"][1] == [
        ("fk_training_runs_dataset_id_training_datasets", ("dataset_id",),
         "training_datasets", "SET NULL"),
        ("fk_training_runs_user_id_users", ("user_id",), "users", "CASCADE")]
    assert _status_checks(engine) == {f"ck_{t}_status" for t in STATUS_COLUMNS}

    command.downgrade(alembic_config(settings.database_url), "0001")
    assert _status_checks(engine) == set()
    with engine.connect() as conn:
        assert _rows(conn) == rows
    assert _structure(engine) == structure

    migrate(settings.database_url, "0002")
    assert _status_checks(engine) == {f"ck_{t}_status" for t in STATUS_COLUMNS}
    with engine.connect() as conn:
        assert _rows(conn) == rows
        if engine.dialect.name == "sqlite":  # the migration switched them off for itself only
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    assert _structure(engine) == structure
    migrate(settings.database_url)

    with engine.begin() as conn:
        conn.execute(delete(TABLES["voice_profiles"]))
        conn.execute(delete(TABLES["training_datasets"]))
    with engine.connect() as conn:  # SET NULL still fires
        assert conn.execute(select(TABLES["voice_llm_integrations"].c.voice_profile_id)
                            ).scalar_one() is None
        assert conn.execute(select(TABLES["training_runs"].c.dataset_id)).scalar_one() is None
    with engine.begin() as conn:
        conn.execute(delete(TABLES["users"]).where(TABLES["users"].c.id == ids["user"]))
    with engine.connect() as conn:  # CASCADE still fires, through every level
        left = {name: n for name, n in ((name, len(r)) for name, r in _rows(conn).items()) if n}
    assert left == {}


def test_upgrade_refuses_rows_with_unknown_statuses_and_changes_nothing(settings):
    engine = get_engine(settings.database_url)
    command.downgrade(alembic_config(settings.database_url), "0001")
    with engine.begin() as conn:
        parents = _parents(conn)
        _add(conn, "training_runs", user_id=parents["user"], status="pending")
        bad = _add(conn, "voice_profiles", user_id=parents["user"], status="done")
    structure = _structure(engine)

    with pytest.raises(RuntimeError, match=r"voice_profiles has rows .*\['done'\]"):
        migrate(settings.database_url)
    assert _status_checks(engine) == set()
    assert not [t for t in inspect(engine).get_table_names() if t.startswith("_alembic_tmp")]
    assert _structure(engine) == structure

    with engine.begin() as conn:
        conn.execute(update(TABLES["voice_profiles"]).where(TABLES["voice_profiles"].c.id == bad)
                     .values(status="failed"))
    migrate(settings.database_url)
    assert _status_checks(engine) == {f"ck_{t}_status" for t in STATUS_COLUMNS}


def test_failed_sqlite_rebuild_is_rolled_back_whole(sqlite_settings):
    """A rebuild that fails part-way (here the closing foreign-key check, tripped by an orphan
    row) leaves the database at 0001 with no half-built table, so migrating again works."""
    url = sqlite_settings.database_url
    engine = get_engine(url)
    command.downgrade(alembic_config(url), "0001")
    with engine.begin() as conn:
        parents = _parents(conn)
    raw = sqlite3.connect(make_url(url).database)  # foreign keys off: an orphan can be written
    with raw:
        raw.execute("INSERT INTO training_metrics (id, training_run_id, step, created_at) "
                    "VALUES (?, ?, 1, '2026-01-01 00:00:00')",
                    (uuid.uuid4().hex, uuid.uuid4().hex))
    raw.close()

    with pytest.raises(RuntimeError, match="foreign key violations"):
        migrate(url)
    assert _status_checks(engine) == set()
    assert not [t for t in inspect(engine).get_table_names() if t.startswith("_alembic_tmp")]
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "0001"

    with engine.begin() as conn:
        conn.execute(delete(TABLES["training_metrics"]))
    migrate(url)
    assert _status_checks(engine) == {f"ck_{t}_status" for t in STATUS_COLUMNS}
    with engine.connect() as conn:
        assert conn.execute(select(TABLES["users"].c.id)).scalar_one() == parents["user"]
