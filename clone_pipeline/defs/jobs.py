"""Jobs over the asset graph, and one-click training presets with baked config."""

import dagster as dg

from clone_pipeline.defs.assets_data import collected_training_data, formatted_datasets
from clone_pipeline.defs.assets_maintenance import housekeeping_report
from clone_pipeline.defs.assets_memory import memory_index
from clone_pipeline.defs.assets_serving import deployment
from clone_pipeline.defs.assets_training import model_evaluation, trained_adapter
from clone_pipeline.defs.assets_voice import voice_alignment, voice_profile
from clone_pipeline.launch.names import (
    COMPLETE_WORKFLOW,
    DATA_ONLY,
    DEPLOY_EVALUATED,
    VOICE_INTEGRATION,
)
from clone_pipeline.services.workflows import STAGES
from clone_pipeline.training.config import PRESETS

# The workflow's stages are these assets, in this order (services.workflows names them).
WORKFLOW_ASSETS = (collected_training_data, memory_index, formatted_datasets, voice_profile,
                   voice_alignment, trained_adapter, model_evaluation, deployment)
assert [a.key.to_user_string() for a in WORKFLOW_ASSETS] == list(STAGES)

data_only = dg.define_asset_job(
    DATA_ONLY,
    selection=dg.AssetSelection.assets(collected_training_data, memory_index,
                                       formatted_datasets),
    description="Collect, clean, assess and format one user's material, and index her "
                "memories.",
)

complete_workflow = dg.define_asset_job(
    COMPLETE_WORKFLOW,
    selection=dg.AssetSelection.assets(*WORKFLOW_ASSETS),
    description="Everything for one user: data, voice, training, evaluation and (with the "
                "deployment asset's auto_deploy on) serving the version that passed. A "
                "workflow launch (clone-pipeline workflow start, the REST API) selects the "
                "stages it asked for; `clone-pipeline run` leaves the voice stages out.",
)

train_and_deploy = dg.define_asset_job(
    "train_and_deploy",
    selection=dg.AssetSelection.assets(trained_adapter, model_evaluation, deployment),
    config={"ops": {"deployment": {"config": {"auto_deploy": True}}}},
    description="Train on the user's formatted data, evaluate, and serve the version if it "
                "passed (auto_deploy on).",
)

deploy_evaluated = dg.define_asset_job(
    DEPLOY_EVALUATED,
    selection=dg.AssetSelection.assets(deployment),
    config={"ops": {"deployment": {"config": {"auto_deploy": True}}}},
    description="Serve the user's latest evaluated version if it passed (needs the engine of "
                "`clone-pipeline serve`, else starts a private one for the check).",
)

housekeeping = dg.define_asset_job(
    "housekeeping",
    selection=dg.AssetSelection.assets(housekeeping_report),
    description="Archive old training output nothing needs (rows kept, files removed) and "
                "report disk use per user.",
)

voice_integration = dg.define_asset_job(
    VOICE_INTEGRATION,
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
