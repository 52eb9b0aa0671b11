"""Jobs over the asset graph."""

import dagster as dg

from clone_pipeline.defs.assets_data import collected_training_data, formatted_datasets

data_only = dg.define_asset_job(
    "data_only",
    selection=dg.AssetSelection.assets(collected_training_data, formatted_datasets),
    description="Collect, clean, assess and format one user's material.",
)
