"""Evaluate one model version on its dataset's held-out questions and record the figures."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from clone_pipeline.data.formats import record_messages
from clone_pipeline.data.store import read_jsonl
from clone_pipeline.db import datasets, training, users
from clone_pipeline.db.session import session_scope
from clone_pipeline.files import write_json
from clone_pipeline.memory.fidelity import FidelityReport
from clone_pipeline.memory.grounding import persona_prompt
from clone_pipeline.services.fidelity import load_fact_sheet, measure_version
from clone_pipeline.settings import Settings
from clone_pipeline.training.config import TrainConfig
from clone_pipeline.training.preflight import PreflightError

if TYPE_CHECKING:  # torch-bound: imported where an evaluation runs (see services/fidelity.py)
    from clone_pipeline.training.evaluation import EvaluationReport


class ControlSource(StrEnum):
    """Whose answers the persona-similarity control compares against."""

    REFERENCE = "reference"  # the neutral set shipped with the project (default)
    OTHER_USERS = "other_users"  # every other user's collected answers: operators opt in


@dataclass(frozen=True)
class EvaluatedVersion:
    id: uuid.UUID
    version: int
    report: EvaluationReport
    control: ControlSource
    control_texts: int
    samples_path: Path  # sample answers (they quote the person: kept in the data root)
    fidelity: FidelityReport | None = None  # on the person's fact sheet, when they have one


def evaluate_version(settings: Settings, version_id: uuid.UUID,
                     control: ControlSource = ControlSource.REFERENCE,
                     max_questions: int = 12,
                     max_control_texts: int = 200) -> EvaluatedVersion:
    """Evaluate model version *version_id* against its base; store the figures on it."""
    from clone_pipeline.training.evaluation import evaluate_adapter, heldout_key, reference_answers

    with session_scope(settings.database_url) as session:
        version = training.get_version(session, version_id)
        if version is None:
            raise PreflightError(f"no model version {version_id}")
        external_id = users.external_id_of(session, version.user_id)
        run = training.get_run(session, version.training_run_id)
        config = TrainConfig.from_dict(run.config)
        formatted = datasets.latest_formatted(session, run.dataset_id, config.train_format)
        other_datasets = (_other_users_datasets(session, version.user_id)
                          if control == ControlSource.OTHER_USERS else None)
    if formatted is None:
        raise PreflightError(f"model version v{version.version}: its dataset has no "
                             f"{config.train_format!r} files to evaluate on")
    eval_records = list(read_jsonl(settings.home / formatted.eval_path))
    if not eval_records:
        raise PreflightError(f"model version v{version.version}: the dataset holds out no "
                             f"questions to evaluate on (eval_fraction is 0?)")
    if other_datasets is None:
        control_texts = reference_answers()[:max_control_texts]
    else:
        control_texts = [r["answer"] for path in other_datasets
                         for r in read_jsonl(settings.home / path)
                         if r["source"] == "responses"][:max_control_texts]
    report = evaluate_adapter(run.base_model, version.adapter_path, settings.models_dir,
                              eval_records, control_texts, config.train_format,
                              config.context_length, max_questions)
    fidelity = _fidelity(settings, external_id, run.base_model, version.adapter_path,
                         eval_records, config.train_format)
    samples = write_json(Path(version.adapter_path).parent
                         / f"evaluation-samples-v{version.version}.json",
                         {"held_out": report.samples,
                          "fact_sheet": fidelity.samples if fidelity else []})
    heldout = {"heldout": heldout_key(eval_records, config.train_format, config.context_length),
               "heldout_file": formatted.eval_path, "format": config.train_format,
               "context_length": config.context_length}
    with session_scope(settings.database_url) as session:
        training.store_evaluation(session, version_id, {
            **report.as_dict(), "control": str(control), **heldout,
            "fidelity": fidelity.as_dict() if fidelity else None})
    return EvaluatedVersion(version.id, version.version, report, control, len(control_texts),
                            samples, fidelity)


def _fidelity(settings: Settings, external_id: str, base_model: str, adapter_path: str,
              eval_records: list[dict], fmt: str) -> FidelityReport | None:
    """The version's fidelity on the person's fact sheet, with the system prompt it was
    trained with; None when the person has no fact sheet."""
    sheet = load_fact_sheet(settings, external_id)
    if sheet is None:
        return None
    system = next((persona_prompt(m["content"]) for m in record_messages(fmt, eval_records[0])
                   if m["role"] == "system"), "")
    return measure_version(settings, external_id, sheet, base_model, adapter_path, system)


def _other_users_datasets(session, user_id: uuid.UUID) -> list[str]:
    """Paths of every other user's latest collected dataset (operators opt in to this)."""
    paths = []
    for other in users.all_users(session):
        dataset = datasets.latest_dataset(session, other.id) if other.id != user_id else None
        if dataset is not None:
            paths.append(dataset.path)
    return paths


def latest_evaluation(settings: Settings, external_id: str) -> dict | None:
    """The evaluation figures of the user's newest model version, with its version number."""
    with session_scope(settings.database_url) as session:
        version = training.latest_version(session, users.user_id_of(session, external_id))
        if version is None or "evaluation" not in (version.metrics or {}):
            return None
        return {"version": version.version, "base_model": version.base_model,
                "adapter_path": version.adapter_path, **version.metrics["evaluation"]}


def cross_perplexity(settings: Settings, names: list[str]) -> dict[tuple[str, str], float]:
    """Held-out perplexity of each person's real answers under each person's latest
    evaluated adapter, keyed (adapter's person, answers' person): an adapter that learnt its
    person gives their answers a lower figure than another person's adapter does. Only
    people whose adapters share one base (perplexity is per token of its tokenizer)."""
    from clone_pipeline.training.evaluation import adapter_perplexity

    found = {name: e for name in names if (e := latest_evaluation(settings, name))}
    bases = {e["base_model"] for e in found.values()}
    if len(bases) != 1:
        return {}
    held_out = {name: list(read_jsonl(settings.home / e["heldout_file"]))
                for name, e in found.items()}
    return {(adapter, answers): adapter_perplexity(
                e["base_model"], e["adapter_path"], settings.models_dir, held_out[answers],
                found[answers]["format"], found[answers]["context_length"])
            for adapter, e in found.items() for answers in found}
