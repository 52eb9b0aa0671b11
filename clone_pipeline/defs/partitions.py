"""One user = one partition; the key is the export's external_id."""

import warnings

import dagster as dg

from clone_pipeline.launch.names import USERS_PARTITIONS

users = dg.DynamicPartitionsDefinition(name=USERS_PARTITIONS)


def per_user_check(name: str, asset: str, description: str,
                   blocking: bool = False) -> dg.AssetCheckSpec:
    """A check evaluated per user: each result is stored against its partition, so the UI
    shows which users pass or fail and plots each user's metadata separately. (An
    unpartitioned check on a partitioned asset keeps one history for all users.)"""
    with warnings.catch_warnings():
        # Partitioned checks are a preview feature in Dagster 1.13; the warning is for us.
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return dg.AssetCheckSpec(name, asset=asset, description=description,
                                 blocking=blocking, partitions_def=users)
