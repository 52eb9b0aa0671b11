"""The memory asset: each person's searchable passages (clone_pipeline/memory)."""

import dagster as dg

from clone_pipeline.defs.assets_data import collected_training_data
from clone_pipeline.defs.metadata import table
from clone_pipeline.defs.partitions import users
from clone_pipeline.defs.resources import CloneSettings
from clone_pipeline.services.memory import NoCollectedDataError, build_memory


@dg.asset(
    partitions_def=users,
    group_name="data",
    kinds={"python", "numpy"},
    deps=[collected_training_data],
    description="The person's memories made searchable: passages of their redacted answers, "
                "stories and messages in a hybrid BM25 + sentence-embedding index, which "
                "grounds the clone's answers and names their sources.",
)
def memory_index(context: dg.AssetExecutionContext,
                 clone: CloneSettings) -> dg.MaterializeResult:
    user = context.partition_key
    try:
        built = build_memory(clone.settings(), user)
    except NoCollectedDataError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    context.log.info(f"{user}: {built.passages} passages, {built.re_embedded} embedded anew")
    return dg.MaterializeResult(metadata={
        "folder": dg.MetadataValue.path(str(built.folder)),
        "dataset_version": built.dataset_version,
        "passages": built.passages,
        "re_embedded": built.re_embedded,
        "sources": table(["source", "passages"], [[k, v] for k, v in built.sources.items()]),
    })
