"""Data assets: collected_training_data and formatted_datasets (partitioned per user)."""

from collections.abc import Iterator

import dagster as dg

from clone_pipeline.data.validate import validate_files
from clone_pipeline.defs.config import CollectConfig, FormatConfig
from clone_pipeline.defs.metadata import table
from clone_pipeline.defs.partitions import per_user_check, users
from clone_pipeline.defs.resources import CloneSettings
from clone_pipeline.services.datasets import (
    NotReadyError,
    collect_user_data,
    format_user_data,
    readiness_verdict,
)
from clone_pipeline.training.base_models import load_tokenizer


@dg.asset(
    partitions_def=users,
    group_name="data",
    kinds={"python", "sql"},
    check_specs=[per_user_check(
        "readiness", asset="collected_training_data",
        description="Enough material to train on (seed: 50+ responses of 20+ words in 5+ "
                    "categories). A user who is not ready yet stops here: formatting and "
                    "everything after it is skipped, and the reason is on this check.")],
    # The output is withheld for a user who is not ready, which skips everything downstream.
    output_required=False,
    description="The user's responses, life stories and milestone messages, normalised, "
                "PII-redacted and deduplicated, with quality metrics and readiness.",
)
def collected_training_data(context: dg.AssetExecutionContext, config: CollectConfig,
                            clone: CloneSettings) -> Iterator:
    settings = clone.settings()
    user = context.partition_key
    result = collect_user_data(settings, user, config.options(), context.run.run_id,
                               progress=context.log.info)
    c = result.collection
    m, r = c.metrics, c.readiness
    context.log.info(f"{user}: {m.total_examples} examples, {m.total_words} words, "
                     f"ready={r.ready}")
    verdict = readiness_verdict(user, r.ready, r.reasons)
    metadata = {
        "dataset_id": str(result.dataset_id),
        "dataset_version": result.version,
        "path": dg.MetadataValue.path(str(result.path)),
        "sha256": result.sha256,
        "total_examples": m.total_examples,
        "total_words": m.total_words,
        "overall_score": m.overall_score,
        "category_coverage": m.category_coverage,
        "emotional_diversity": m.emotional_diversity,
        "readiness_score": r.score,
        "ready": r.ready,
        "sources": table(["source", "examples"], [[k, v] for k, v in m.sources.items()]),
        "skipped": table(["reason", "count"], [[k, v] for k, v in c.skipped.items()]),
        "redactions": table(["type", "count"], [[k, v] for k, v in c.redactions.items()]),
    }
    readiness = dg.AssetCheckResult(
        check_name="readiness", passed=r.ready, severity=dg.AssetCheckSeverity.ERROR,
        description=verdict,
        metadata={"user": user, "readiness_score": r.score,
                  "reasons": "; ".join(r.reasons) or "all thresholds met",
                  "qualifying_responses": m.qualifying_responses,
                  "category_coverage": m.category_coverage})
    if r.ready:
        yield dg.MaterializeResult(metadata=metadata, check_results=[readiness])
        return
    # Not ready is a state, not a crash: the dataset is recorded (it is collected), the
    # check fails on this user's partition, and without the output formatting is skipped
    # rather than failed. A blocking check would raise DagsterAssetCheckFailedError, fail the
    # run and paint formatted_datasets red for this user.
    yield dg.AssetMaterialization(asset_key=context.asset_key, partition=user,
                                  metadata=metadata)
    yield readiness
    context.log.warning(verdict)


@dg.asset(
    partitions_def=users,
    group_name="data",
    kinds={"python"},
    # memory_index (by key: its module imports this one) gives each example its memories.
    deps=[collected_training_data, dg.AssetKey("memory_index")],
    check_specs=[per_user_check(
        "schema", asset="formatted_datasets", blocking=True,
        description="Every record of every file matches its format's schema, and every "
                    "conversation round-trips through the tokenizer's chat template within "
                    "max_length.")],
    description="The collected dataset in every training format (conversational, "
                "instruction, chat, alpaca, llama, openai, sharegpt), split by question.",
)
def formatted_datasets(context: dg.AssetExecutionContext, config: FormatConfig,
                       clone: CloneSettings) -> dg.MaterializeResult:
    settings = clone.settings()
    user = context.partition_key
    try:
        result = format_user_data(settings, user, config.options(),
                                  tokenizer_name=config.tokenizer,
                                  template_style=config.template_style,
                                  run_id=context.run.run_id)
    except NotReadyError as exc:  # materialised on its own for a user who is not ready
        raise dg.Failure(description=str(exc), metadata={"user": user},
                         allow_retries=False) from None
    report = validate_files(
        {row["format"]: [row["train_path"], row["eval_path"]] for row in result.rows},
        load_tokenizer(config.tokenizer, settings.models_dir), config.max_length)
    context.log.info(f"{user}: {len(result.rows)} formats, "
                     f"{result.train_examples} train / {result.eval_examples} eval examples")
    rows = [[r["format"], r["train_count"], r["eval_count"],
             r["token_stats"].get("median_tokens", 0), r["token_stats"].get("max_tokens", 0)]
            for r in result.rows]
    return dg.MaterializeResult(
        metadata={
            "folder": dg.MetadataValue.path(str(result.folder)),
            "dataset_version": result.dataset_version,
            "tokenizer": result.tokenizer,
            "template_style": result.template_style,
            "train_examples": result.train_examples,
            "eval_examples": result.eval_examples,
            "eval_questions": result.eval_questions,
            "with_memories": result.with_memories,
            "truncated": result.truncated,
            "dropped_too_long": result.dropped,
            "formats": table(["format", "train", "eval", "median tokens", "max tokens"], rows),
        },
        check_results=[dg.AssetCheckResult(
            check_name="schema", passed=report.passed, severity=dg.AssetCheckSeverity.ERROR,
            description=(f"all records valid (user {user})" if report.passed
                         else f"{report.problems[0]} (user {user})"),
            metadata={"user": user, "records_checked": report.records_checked,
                      "chat_template_round_trips": report.round_trips,
                      "problems": "\n".join(report.problems) or "none"})],
    )
