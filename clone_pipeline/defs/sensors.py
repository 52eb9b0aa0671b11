"""Sensors: register users whose source data changed and request their data runs."""


from datetime import datetime

import dagster as dg

from clone_pipeline.db import repository
from clone_pipeline.db.session import session_scope
from clone_pipeline.defs.jobs import data_only
from clone_pipeline.defs.partitions import users
from clone_pipeline.defs.resources import CloneStore


@dg.sensor(job=data_only, minimum_interval_seconds=30,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Adds a partition for every new user, removes partitions of deleted "
                       "users, and requests a data_only run for each user whose material "
                       "changed since the last tick (cursor over updated_at).")
def user_data_changed(context: dg.SensorEvaluationContext,
                      store: CloneStore) -> dg.SensorResult:
    since = datetime.fromisoformat(context.cursor) if context.cursor else None
    settings = store.settings()
    with session_scope(settings.database_url) as session:
        changes = repository.source_changes_since(session, since)
        current = repository.all_external_ids(session)
    registered = set(context.instance.get_dynamic_partitions(users.name))
    added = sorted(set(changes) - registered)
    removed = sorted(registered - current)
    requests = []
    if added:
        requests.append(users.build_add_request(added))
    if removed:
        requests.append(users.build_delete_request(removed))
    cursor = max(changes.values()).isoformat() if changes else context.cursor
    return dg.SensorResult(
        run_requests=[dg.RunRequest(partition_key=key, run_key=f"{key}@{ts.isoformat()}")
                      for key, ts in sorted(changes.items())],
        dynamic_partitions_requests=requests,
        cursor=cursor,
    )
