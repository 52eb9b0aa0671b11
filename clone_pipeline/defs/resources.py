"""Resources: where the data root and the domain database are."""


import os
from pathlib import Path

import dagster as dg
from pydantic import Field, PrivateAttr

from clone_pipeline.db.session import require_current_schema
from clone_pipeline.services.pairing import check_pairing, require_data_root
from clone_pipeline.settings import Settings, load_settings


class CloneSettings(dg.ConfigurableResource):
    """The data root and domain database. Unset fields come from the environment
    (CLONE_HOME, CLONE_DATABASE_URL), so the same definitions run on a laptop and in prod."""

    home: str | None = Field(default=None, description="Data root (default: CLONE_HOME).")
    database_url: str | None = Field(
        default=None, description="Domain database URL (default: CLONE_DATABASE_URL or a "
                                  "SQLite file under the data root).")

    _instance_root: Path | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # The instance this process really uses (DAGSTER_HOME may be unset in `dagster dev`,
        # which then keeps a temporary instance).
        if context.instance is not None:
            self._instance_root = Path(context.instance.root_directory)

    def settings(self) -> Settings:
        """The settings, after checking that the data root exists and belongs to this
        process's Dagster instance, and that the domain schema is current (migrating is
        `clone-pipeline init`'s job alone, so concurrent runs never race to migrate)."""
        env = {}
        if self.home:
            env["CLONE_HOME"] = self.home
        if self.database_url:
            env["CLONE_DATABASE_URL"] = self.database_url
        settings = load_settings({**os.environ, **env})
        check_pairing(settings, self._instance_root)
        require_data_root(settings)
        settings.ensure_dirs()
        require_current_schema(settings.database_url)
        return settings
