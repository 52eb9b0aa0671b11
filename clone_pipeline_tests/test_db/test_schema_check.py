"""Only `clone-pipeline init` migrates; every other process refuses a schema that is behind,
saying what to run, and leaves the database as it was."""

import pytest
from alembic import command
from alembic.migration import MigrationContext

from clone_pipeline.db.session import (
    SchemaBehindError,
    alembic_config,
    get_engine,
    migrate,
    require_current_schema,
)
from clone_pipeline.defs.resources import CloneSettings


def test_a_schema_behind_is_refused_with_the_command_to_run(sqlite_settings):
    url = sqlite_settings.database_url
    command.downgrade(alembic_config(url), "0001")
    require_current_schema.cache_clear()
    resource = CloneSettings(home=str(sqlite_settings.home), database_url=url)
    with pytest.raises(SchemaBehindError, match="clone-pipeline init"):
        resource.settings()
    with get_engine(url).connect() as conn:  # the resource did not migrate it
        assert MigrationContext.configure(conn).get_current_revision() == "0001"
    migrate(url)
    require_current_schema.cache_clear()
    assert resource.settings().database_url == url
