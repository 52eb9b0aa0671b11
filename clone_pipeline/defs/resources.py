"""Resources: where the data root and the domain database are."""


import os

import dagster as dg
from pydantic import Field

from clone_pipeline.db.session import require_current_schema
from clone_pipeline.settings import Settings, load_settings


class CloneSettings(dg.ConfigurableResource):
    """The data root and domain database. Unset fields come from the environment
    (CLONE_HOME, CLONE_DATABASE_URL), so the same definitions run on a laptop and in prod."""

    home: str | None = Field(default=None, description="Data root (default: CLONE_HOME).")
    database_url: str | None = Field(
        default=None, description="Domain database URL (default: CLONE_DATABASE_URL or a "
                                  "SQLite file under the data root).")

    def settings(self) -> Settings:
        """The settings, after checking the domain schema is current (migrating is
        `clone-pipeline init`'s job alone, so concurrent runs never race to migrate)."""
        env = {}
        if self.home:
            env["CLONE_HOME"] = self.home
        if self.database_url:
            env["CLONE_DATABASE_URL"] = self.database_url
        settings = load_settings({**os.environ, **env})
        settings.ensure_dirs()
        require_current_schema(settings.database_url)
        return settings
