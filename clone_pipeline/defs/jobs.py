"""Jobs over the asset graph, and one-click training presets with baked config."""

import dagster as dg

from clone_pipeline.defs.assets_data import collected_training_data, formatted_datasets
from clone_pipeline.defs.assets_serving import deployment
from clone_pipeline.defs.assets_training import model_evaluation, trained_adapter
from clone_pipeline.defs.assets_voice import voice_alignment, voice_profile
from clone_pipeline.training.config import PRESETS

data_only = dg.define_asset_job(
    "data_only",
    selection=dg.AssetSelection.assets(collected_training_data, formatted_datasets),
    description="Collect, clean, assess and format one user's material.",
)

complete_workflow = dg.define_asset_job(
    "complete_workflow",
    selection=dg.AssetSelection.assets(collected_training_data, formatted_datasets,
                                       trained_adapter, model_evaluation, deployment),
    description="Everything for one user: data, training, evaluation and (with the "
                "deployment asset's auto_deploy on) serving the version that passed.",
)

train_and_deploy = dg.define_asset_job(
    "train_and_deploy",
    selection=dg.AssetSelection.assets(trained_adapter, model_evaluation, deployment),
    config={"ops": {"deployment": {"config": {"auto_deploy": True}}}},
    description="Train on the user's formatted data, evaluate, and serve the version if it "
                "passed (auto_deploy on).",
)

deploy_evaluated = dg.define_asset_job(
    "deploy_evaluated",
    selection=dg.AssetSelection.assets(deployment),
    config={"ops": {"deployment": {"config": {"auto_deploy": True}}}},
    description="Serve the user's latest evaluated version if it passed (needs the engine of "
                "`clone-pipeline serve`, else starts a private one for the check).",
)

voice_integration = dg.define_asset_job(
    "voice_integration",
    selection=dg.AssetSelection.assets(voice_profile, voice_alignment),
    description="One user's voice profile and voice-text alignment (five stages, from "
                "analysis to validation).",
)

training_presets = [
    dg.define_asset_job(
        f"train_{name}", selection=dg.AssetSelection.assets(trained_adapter),
        config={"ops": {"trained_adapter": {"config": preset}}},
        description=f"Train an adapter with the {name} preset: {preset}.")
    for name, preset in PRESETS.items()
]
