"""A user's model versions: which is current, promotion after evaluation, and rollback.

The current version is the one promoted last. After each evaluation a version is promoted
only when it beats the current one on the same held-out questions (training.promotion); a
person can promote any evaluated version by hand (a rollback, or a new base model).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from clone_pipeline.data.store import read_jsonl
from clone_pipeline.db import training, users
from clone_pipeline.db.session import session_scope
from clone_pipeline.db.sources import lock_user
from clone_pipeline.settings import Settings
from clone_pipeline.training.promotion import Standing, Verdict, judge


@dataclass(frozen=True)
class VersionSummary:
    version: int
    created_at: datetime
    base_model: str
    adapter_perplexity: float | None  # on its own held-out questions; lower is better
    base_perplexity: float | None
    persona_similarity: float | None  # to the person's held-out answers; higher is better
    control_similarity: float | None
    current: bool
    promoted_at: datetime | None
    note: str | None  # why it was promoted, or why not


class UnknownVersionError(LookupError):
    pass


def _summary(row, current_id) -> VersionSummary:
    e = row.metrics.get("evaluation", {})
    return VersionSummary(row.version, row.created_at, row.base_model,
                          e.get("adapter_perplexity"), e.get("base_perplexity"),
                          e.get("persona_similarity"), e.get("control_similarity"),
                          row.id == current_id, row.promoted_at, row.promotion_note)


def list_versions(settings: Settings, external_id: str) -> list[VersionSummary]:
    """Every model version of the user, oldest first, the current one marked."""
    with session_scope(settings.database_url) as session:
        user_id = users.user_id_of(session, external_id)
        current = training.current_version(session, user_id)
        return [_summary(row, current.id if current else None)
                for row in training.versions_of(session, user_id)]


def trained_in_run(settings: Settings, dagster_run_id: str) -> list[VersionSummary]:
    """The versions a Dagster run trained, with their figures and verdicts."""
    with session_scope(settings.database_url) as session:
        rows = training.versions_trained_in(session, dagster_run_id)
        currents = {row.user_id: training.current_version(session, row.user_id)
                    for row in rows}
        return [_summary(row, getattr(currents[row.user_id], "id", None)) for row in rows]


def decide_promotion(settings: Settings, version_id: uuid.UUID) -> Verdict:
    """Promote the evaluated version *version_id* if it beats its base and the user's current
    version on its held-out questions; record the verdict on it either way.

    When the current version was evaluated on other held-out questions (a newer dataset),
    its adapter is evaluated again on the candidate's, so the two are always compared on the
    same answers. The decision is taken under the user's lock, against the version current
    at that moment.
    """
    with session_scope(settings.database_url) as session:
        row = training.get_version(session, version_id)
        evaluation = row.metrics.get("evaluation")
        if evaluation is None:
            raise ValueError(f"model version v{row.version} has not been evaluated")
        external_id = users.external_id_of(session, row.user_id)
        current = training.current_version(session, row.user_id)
        stale = (current is not None and current.id != row.id
                 and current.base_model == row.base_model
                 and evaluation["heldout"] not in current.metrics.get("heldout_perplexity", {}))
        current_adapter = (current.id, current.adapter_path) if stale else None
    reevaluated = current_adapter is not None
    if reevaluated:
        _measure_on_heldout(settings, *current_adapter, row.base_model, evaluation)
    with session_scope(settings.database_url) as session:
        lock_user(session, external_id)  # first: one decision per user at a time
        current = training.current_version(session, row.user_id)
        if current is not None and current.id == row.id:
            return Verdict(True, row.promotion_note or f"v{row.version} is already current")
        candidate = Standing(row.version, row.base_model, evaluation["adapter_perplexity"],
                             evaluation["base_perplexity"])
        standing = None if current is None else Standing(
            current.version, current.base_model,
            current.metrics.get("heldout_perplexity", {}).get(evaluation["heldout"]))
        verdict = judge(candidate, standing, reevaluated and standing is not None
                        and current.id == current_adapter[0])
        if verdict.promote:
            training.promote(session, row.id, f"auto: {verdict.note}")
        else:
            training.note_kept(session, row.id, verdict.note)
        return verdict


def _measure_on_heldout(settings: Settings, version_id: uuid.UUID, adapter_path: str,
                        base_model: str, evaluation: dict) -> None:
    """Evaluate adapter *adapter_path* (of version *version_id*) on the held-out questions
    *evaluation* scored, and record the figure on that version."""
    # torch-bound, so imported here, not with the module (see services/fidelity.py)
    from clone_pipeline.training.evaluation import adapter_perplexity, heldout_key

    path = settings.home / evaluation["heldout_file"]
    if not (path.is_file() and Path(adapter_path).is_dir()):
        return  # nothing to measure with; judge() then keeps the current version, saying why
    records = list(read_jsonl(path))
    key = heldout_key(records, evaluation["format"], evaluation["context_length"])
    if key != evaluation["heldout"]:
        return  # the file changed since (judged as above)
    perplexity = adapter_perplexity(base_model, adapter_path, settings.models_dir, records,
                                    evaluation["format"], evaluation["context_length"])
    with session_scope(settings.database_url) as session:
        training.store_heldout_perplexity(session, version_id, key, perplexity)


def promote(settings: Settings, external_id: str, number: int) -> str:
    """Make version *number* the user's current one by hand (a rollback, say); returns the
    note recorded on it. Only evaluated versions can be promoted."""
    with session_scope(settings.database_url) as session:
        lock_user(session, external_id)
        user_id = users.user_id_of(session, external_id)
        row = training.version_number(session, user_id, number)
        if row is None:
            known = ", ".join(f"v{v.version}" for v in training.versions_of(session, user_id))
            raise UnknownVersionError(f"{external_id} has no model version v{number} (versions: "
                                      f"{known or 'none'}; see clone-pipeline models "
                                      f"{external_id})")
        if "evaluation" not in row.metrics:
            raise UnknownVersionError(f"{external_id} v{number} has not been evaluated; run "
                                      f"model_evaluation for it before promoting it")
        current = training.current_version(session, user_id)
        if current is not None and current.id == row.id:
            return f"v{number} is already current"
        was = f"v{current.version}" if current else "none"
        note = f"manual: promoted by hand (current was {was})"
        training.promote(session, row.id, note)
        return note


def owner_of_version(settings: Settings, version_id: uuid.UUID) -> str | None:
    """The external id of the user a model version belongs to (None if there is none)."""
    with session_scope(settings.database_url) as session:
        row = training.get_version(session, version_id)
        return None if row is None else users.external_id_of(session, row.user_id)
