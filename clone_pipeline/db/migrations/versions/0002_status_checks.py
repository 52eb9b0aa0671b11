"""status CHECK constraints

Each pipeline table's ``status`` column accepts only its own vocabulary. The values are
copied here as they stand at this revision (``db/statuses.py``); a later change to a
vocabulary needs a migration of its own. Rows already outside a vocabulary stop the upgrade
with a message naming them.

SQLite cannot add a CHECK constraint in place: batch mode rebuilds each table (copy into a
new table, drop the old one, rename), keeping its columns, indexes and foreign keys.
Dropping a table that others reference while ``PRAGMA foreign_keys`` is on would fire their
ON DELETE CASCADE / SET NULL, so enforcement is switched off for the rebuilds (which must run
in one explicit transaction, or a failure leaves a half-built table behind) and the result
checked with ``PRAGMA foreign_key_check`` before it commits.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES: dict[str, tuple[str, ...]] = {
    "training_runs": ("pending", "running", "completed", "early_stopped", "cancelled", "failed"),
    "model_versions": ("trained", "evaluated"),
    "voice_profiles": ("pending", "ready", "failed"),
    "voice_llm_integrations": ("pending", "passed", "failed"),
    "model_deployments": ("pending", "deploying", "active", "stopped", "failed"),
    "inference_logs": ("ok", "error", "cancelled"),
    "training_workflows": ("pending", "running", "completed", "failed", "cancelled"),
}


def _sqlite_online() -> bool:
    context = op.get_context()
    return context.dialect.name == "sqlite" and not context.as_sql


def _rebuild_safely() -> None:
    """On SQLite, keep the table rebuilds from cascading into the tables that refer to them."""
    if not _sqlite_online():
        return
    bind = op.get_bind()
    # The pragma only takes effect outside a transaction. When this revision runs on its own
    # none is open yet; when it follows 0001 in the same run one is, and the tables are new.
    bind.exec_driver_sql("PRAGMA foreign_keys=OFF")
    if not bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        # This connection goes back to the pool when the migration ends; make the pool open a
        # new one (with the engine's pragmas) instead of reusing it without foreign keys.
        bind.connection.invalidate(soft=True)
        # pysqlite opens its transaction only at the first INSERT, after the CREATE TABLE of
        # the first rebuild: open it now, so a failure leaves no half-built table behind.
        bind.exec_driver_sql("BEGIN")
        return
    for table in STATUSES:
        if bind.exec_driver_sql(f"SELECT 1 FROM {table} LIMIT 1").first():
            raise RuntimeError(
                f"cannot rebuild {table} while SQLite enforces foreign keys (a transaction was "
                "already open): its rows would cascade into the tables that refer to it; run "
                "this revision on its own")


def _check_foreign_keys() -> None:
    if _sqlite_online():
        broken = op.get_bind().exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"foreign key violations after the rebuild: {broken[:10]}")


def _in(values: tuple[str, ...]) -> str:
    return "status IN ({})".format(", ".join(f"'{value}'" for value in values))


def upgrade() -> None:
    if not op.get_context().as_sql:
        for table, values in STATUSES.items():
            unknown = op.get_bind().exec_driver_sql(
                f"SELECT DISTINCT status FROM {table} WHERE NOT ({_in(values)})").scalars().all()
            if unknown:
                raise RuntimeError(f"{table} has rows with statuses outside {values}: "
                                   f"{sorted(unknown)}; correct them, then migrate again")
    _rebuild_safely()
    for table, values in STATUSES.items():
        with op.batch_alter_table(table) as batch_op:
            batch_op.create_check_constraint(op.f(f"ck_{table}_status"), _in(values))
    _check_foreign_keys()


def downgrade() -> None:
    _rebuild_safely()
    for table in reversed(STATUSES):
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_constraint(op.f(f"ck_{table}_status"), type_="check")
    _check_foreign_keys()
