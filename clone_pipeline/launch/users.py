"""Removing a user everywhere: domain rows, data-root folders and their Dagster partition."""

from __future__ import annotations

import dagster as dg

from clone_pipeline.launch.names import USERS_PARTITIONS
from clone_pipeline.services import users as user_service
from clone_pipeline.settings import Settings


def remove_user(instance: dg.DagsterInstance, settings: Settings, external_id: str) -> None:
    """Delete the user's rows, folders and partition. Personal text never enters Dagster's
    event metadata (assets record counts, figures and paths), so nothing there needs purging."""
    user_service.remove_user(settings, external_id)
    if instance.has_dynamic_partition(USERS_PARTITIONS, external_id):
        instance.delete_dynamic_partition(USERS_PARTITIONS, external_id)
