"""The two data stages as plain functions: read the domain DB, do the work, record it.

The Dagster assets are thin wrappers around these; so is anything else that wants the data
half of the pipeline without Dagster.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from clone_pipeline.data.collect import Collection, CollectOptions, collect
from clone_pipeline.data.examples import Example
from clone_pipeline.data.format_dataset import FormatOptions, format_examples, write_formats
from clone_pipeline.data.prompts import system_prompt
from clone_pipeline.data.store import read_jsonl, write_jsonl
from clone_pipeline.db import repository
from clone_pipeline.db.models import FormattedTrainingData, TrainingDataset
from clone_pipeline.db.session import session_scope
from clone_pipeline.settings import Settings
from clone_pipeline.training.base_models import load_tokenizer


class NotReadyError(RuntimeError):
    """The user's latest dataset does not pass the readiness gate."""


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


def collect_user_data(settings: Settings, external_id: str, options: CollectOptions,
                      run_id: str | None = None,
                      progress: Callable[[str], None] | None = None) -> CollectedDataset:
    """Collect a user's material into a versioned dataset file and a training_datasets row."""
    with session_scope(settings.database_url) as session:
        user = repository.get_user(session, external_id)
        material = repository.load_source_material(session, external_id)
        collection = collect(material, options, progress)
        records = [e.as_dict() for e in collection.examples]
        staging = settings.user_dataset_dir(external_id) / "collected" / f".staging-{uuid.uuid4()}"
        sha = write_jsonl(staging, records)
        version = repository.dataset_version_for(session, user.id, sha)
        path = staging.with_name(f"v{version:04d}-{sha[:12]}.jsonl")
        staging.replace(path)  # same content -> same name, so re-collecting never duplicates
        row = TrainingDataset(
            user_id=user.id, dagster_run_id=run_id, version=version,
            path=str(path.relative_to(settings.home)), sha256=sha,
            config=asdict(options),
            total_examples=collection.metrics.total_examples,
            total_words=collection.metrics.total_words,
            sources=collection.metrics.sources, skipped=dict(collection.skipped),
            redactions=dict(collection.redactions),
            quality_metrics=collection.metrics.as_dict(),
            readiness=collection.readiness.as_dict(), ready=collection.readiness.ready)
        session.add(row)
        session.flush()
        return CollectedDataset(row.id, version, path, sha, collection)


def format_user_data(settings: Settings, external_id: str, options: FormatOptions, *,
                     tokenizer_name: str, template_style: str, run_id: str | None = None
                     ) -> FormattedDataset:
    """Render the user's latest dataset in every format, split by question, one row each."""
    tokenizer = load_tokenizer(tokenizer_name, settings.models_dir)
    with session_scope(settings.database_url) as session:
        user = repository.get_user(session, external_id)
        dataset = repository.latest_dataset(session, user.id)
        if dataset is None:
            raise NotReadyError(f"{external_id}: no collected dataset yet; materialise "
                                f"collected_training_data first")
        if not dataset.ready:
            reasons = "; ".join(dataset.readiness.get("reasons", []))
            raise NotReadyError(f"{external_id}: dataset v{dataset.version} is not ready "
                                f"for training ({reasons})")
        examples = [Example.from_dict(r) for r in read_jsonl(settings.home / dataset.path)]
        system = system_prompt(user.display_name, user.persona, user.birth_year,
                               template_style)
        formatted = format_examples(examples, system, tokenizer, options)
        folder = (settings.user_dataset_dir(external_id) / "formatted"
                  / f"v{dataset.version:04d}-{template_style}")
        rows = []
        for written in write_formats(formatted, folder, options.workers):
            stats = formatted.token_stats[written.format]
            session.add(FormattedTrainingData(
                user_id=user.id, dataset_id=dataset.id, dagster_run_id=run_id,
                format=written.format, template_style=template_style,
                include_system_prompts=options.include_system_prompts,
                max_length=options.max_length, tokenizer=tokenizer_name,
                train_path=str(written.train_path.relative_to(settings.home)),
                eval_path=str(written.eval_path.relative_to(settings.home)),
                sha256=written.sha256, train_count=written.train_count,
                eval_count=written.eval_count, truncated_count=formatted.truncated,
                dropped_count=formatted.dropped, token_stats=stats))
            rows.append({"format": written.format, "train_path": written.train_path,
                         "eval_path": written.eval_path, "sha256": written.sha256,
                         "train_count": written.train_count,
                         "eval_count": written.eval_count, "token_stats": stats})
        return FormattedDataset(
            dataset.id, dataset.version, folder, tokenizer_name, template_style, rows,
            formatted.truncated, formatted.dropped, len(formatted.train_examples),
            len(formatted.eval_examples), len({e.group for e in formatted.eval_examples}))
