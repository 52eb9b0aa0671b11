"""The two data stages: collect a user's material into a dataset, format it for training."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from clone_pipeline.data.collect import Collection, CollectOptions, SourceMaterial, collect
from clone_pipeline.data.examples import Example
from clone_pipeline.data.format_dataset import FormatOptions, format_examples, write_formats
from clone_pipeline.data.pii import Redactor
from clone_pipeline.data.prompts import system_prompt
from clone_pipeline.data.split import split_by_question
from clone_pipeline.data.store import read_jsonl, write_jsonl
from clone_pipeline.db import datasets, sources, users
from clone_pipeline.db.session import session_scope
from clone_pipeline.files import relative_to_root, user_folder
from clone_pipeline.memory.grounding import add_memories
from clone_pipeline.services.memory import load_memory
from clone_pipeline.settings import Settings
from clone_pipeline.training.base_models import load_tokenizer


class NotReadyError(RuntimeError):
    """The user's latest dataset does not pass the readiness gate."""


def readiness_verdict(external_id: str, ready: bool, reasons: list[str]) -> str:
    """How readiness reads wherever a person sees it (the check, the run log, the CLI): a
    user who is not ready yet is a state with a reason, not an error."""
    if ready:
        return f"ready: all thresholds met (user {external_id})"
    return f"not ready yet: {'; '.join(reasons) or 'readiness not met'} (user {external_id})"


@dataclass
class CollectedDataset:
    dataset_id: uuid.UUID
    version: int
    path: Path
    sha256: str
    collection: Collection


@dataclass
class FormattedDataset:
    dataset_id: uuid.UUID
    dataset_version: int
    folder: Path
    tokenizer: str
    template_style: str
    rows: list[dict[str, Any]]  # one per format: paths, counts, token stats
    truncated: int
    dropped: int
    train_examples: int
    eval_examples: int
    eval_questions: int
    with_memories: int = 0  # examples that were given retrieved memories


def source_material(settings: Settings, external_id: str) -> SourceMaterial:
    """The user's profile and written material, read in one short transaction."""
    with session_scope(settings.database_url) as session:
        stored = sources.load_material(session, external_id)
    return SourceMaterial(
        external_id=stored.external_id, display_name=stored.display_name,
        persona=stored.persona, birth_year=stored.birth_year, responses=stored.responses,
        life_stories=stored.life_stories, milestone_messages=stored.milestone_messages)


def collect_user_data(settings: Settings, external_id: str, options: CollectOptions,
                      run_id: str | None = None,
                      progress: Callable[[str], None] | None = None) -> CollectedDataset:
    """Collect a user's material into a versioned dataset file and a training_datasets row."""
    material = source_material(settings, external_id)
    collection = collect(material, options, progress)
    folder = user_folder(settings, "datasets", external_id) / "collected"
    staging = folder / f".staging-{uuid.uuid4()}"
    sha = write_jsonl(staging, (e.as_dict() for e in collection.examples))
    try:
        with session_scope(settings.database_url) as session:
            user_id = users.get_user(session, external_id).id
            version = datasets.dataset_version_for(session, user_id, sha)
            path = folder / f"v{version:04d}-{sha[:12]}.jsonl"
            staging.replace(path)  # same content -> same name: re-collecting never duplicates
            row = datasets.add_dataset(
                session, user_id=user_id, dagster_run_id=run_id, version=version,
                path=relative_to_root(settings, path), sha256=sha, config=asdict(options),
                total_examples=collection.metrics.total_examples,
                total_words=collection.metrics.total_words,
                sources=collection.metrics.sources, skipped=dict(collection.skipped),
                redactions=dict(collection.redactions),
                quality_metrics=collection.metrics.as_dict(),
                readiness=collection.readiness.as_dict(), ready=collection.readiness.ready)
            dataset_id = row.id
    finally:
        staging.unlink(missing_ok=True)
    return CollectedDataset(dataset_id, version, path, sha, collection)


def _collected_with(dataset) -> CollectOptions:
    """The redaction options a dataset was collected with (the defaults before it has one),
    so the system prompt is redacted like the examples it goes with."""
    config, defaults = (dataset.config if dataset is not None else {}), CollectOptions()
    return CollectOptions(
        keep_own_name=config.get("keep_own_name", defaults.keep_own_name),
        redact_names=tuple(config.get("redact_names") or ()),
        phone_regions=tuple(config.get("phone_regions") or defaults.phone_regions))


def format_user_data(settings: Settings, external_id: str, options: FormatOptions, *,
                     tokenizer_name: str, template_style: str, run_id: str | None = None
                     ) -> FormattedDataset:
    """Render the user's latest dataset in every format, split by question, one row each."""
    tokenizer = load_tokenizer(tokenizer_name, settings.models_dir)
    with session_scope(settings.database_url) as session:
        user = users.get_user(session, external_id)
        user_id = user.id
        dataset = datasets.latest_dataset(session, user_id)
        system = system_prompt(
            user.display_name, user.persona or {}, user.birth_year, template_style,
            Redactor(_collected_with(dataset).pii_policy(user.display_name)))
    if dataset is None:
        raise NotReadyError(readiness_verdict(external_id, False, [
            "no collected dataset yet; materialise collected_training_data first"]))
    if not dataset.ready:
        raise NotReadyError(readiness_verdict(external_id, False,
                                              dataset.readiness.get("reasons", [])))
    examples = [Example.from_dict(r) for r in read_jsonl(settings.home / dataset.path)]
    index = load_memory(settings, external_id) if options.with_memories else None
    # Split before the memories are added: a held-out example never sees its own answer.
    held_out = frozenset(e.id for e in split_by_question(
        examples, options.eval_fraction, options.seed)[1])
    with_memories = 0
    if index is not None:
        with_memories = add_memories(index, examples, options.own_answer_share, held_out,
                                     options.seed)
    formatted = format_examples(examples, system, tokenizer, options, held_out)
    folder = (user_folder(settings, "datasets", external_id) / "formatted"
              / f"v{dataset.version:04d}-{template_style}")
    written = write_formats(formatted, folder, options.workers)
    rows = [{"format": w.format, "train_path": w.train_path, "eval_path": w.eval_path,
             "sha256": w.sha256, "train_count": w.train_count, "eval_count": w.eval_count,
             "token_stats": formatted.token_stats[w.format]} for w in written]
    with session_scope(settings.database_url) as session:
        datasets.add_formatted(session, [{
            **row, "user_id": user_id, "dataset_id": dataset.id, "dagster_run_id": run_id,
            "template_style": template_style,
            "include_system_prompts": options.include_system_prompts,
            "max_length": options.max_length, "tokenizer": tokenizer_name,
            "train_path": relative_to_root(settings, row["train_path"]),
            "eval_path": relative_to_root(settings, row["eval_path"]),
            "truncated_count": formatted.truncated, "dropped_count": formatted.dropped}
            for row in rows])
    return FormattedDataset(
        dataset.id, dataset.version, folder, tokenizer_name, template_style, rows,
        formatted.truncated, formatted.dropped, len(formatted.train_examples),
        len(formatted.eval_examples), len({e.group for e in formatted.eval_examples}),
        with_memories)


def produced_by_run(settings: Settings, dagster_run_id: str) -> dict[str, Any]:
    """What one Dagster run's data stages recorded: the collected dataset (or None) and the
    formatted files, per format."""
    with session_scope(settings.database_url) as session:
        collected = [{"version": d.version, "total_examples": d.total_examples,
                      "total_words": d.total_words, "sources": dict(d.sources),
                      "quality": dict(d.quality_metrics), "readiness": dict(d.readiness),
                      "ready": d.ready} for d in datasets.datasets_of_run(session, dagster_run_id)]
        formatted = [{"format": f.format, "train": f.train_count, "eval": f.eval_count,
                      "truncated": f.truncated_count, "dropped": f.dropped_count,
                      "template_style": f.template_style, "max_length": f.max_length,
                      "token_stats": dict(f.token_stats),
                      "dataset_version": version}
                     for f, version in datasets.formatted_of_run(session, dagster_run_id)]
    return {"collected": collected[0] if collected else None, "formatted": formatted}
