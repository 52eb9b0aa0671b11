"""Users as a whole: where each stands, and removal that leaves nothing behind."""

from __future__ import annotations

import shutil
from typing import Any

from clone_pipeline.db import datasets, deployments, training, users, voice
from clone_pipeline.db.session import reclaim_deleted_rows, session_scope
from clone_pipeline.db.statuses import VoiceProfileStatus
from clone_pipeline.files import user_folders
from clone_pipeline.settings import Settings


def overview(settings: Settings, only: set[str] | None = None) -> list[dict[str, Any]]:
    """Where every user (or those in *only*) stands, read in one short transaction: item
    counts; their latest dataset's readiness and quality; their latest formatting (train /
    eval examples, formats); their current model version (the one promoted last, else the
    newest, not yet judged) with its held-out perplexity and the newest version's number;
    their latest usable voice profile; their newest live deployment (name, version, status)."""
    out = []
    with session_scope(settings.database_url) as session:
        for user in users.all_users(session):
            if only is not None and user.external_id not in only:
                continue
            dataset = datasets.latest_dataset(session, user.id)
            latest = training.latest_version(session, user.id)
            model = training.current_version(session, user.id) or latest
            evaluation = (model.metrics or {}).get("evaluation", {}) if model else {}
            profile = voice.latest_profile(session, user.id, VoiceProfileStatus.READY)
            live = deployments.live(session, user.id)
            served = training.get_version(session, live[-1].model_version_id) if live else None
            out.append({"external_id": user.external_id, "display_name": user.display_name,
                        **users.item_counts(session, user.id),
                        "dataset_version": dataset.version if dataset else None,
                        "ready": dataset.ready if dataset else None,
                        "quality": dataset.quality_metrics if dataset else None,
                        "readiness": dataset.readiness if dataset else None,
                        "formatted": datasets.latest_formatted_summary(session, user.id),
                        "model": {"version": model.version, "status": model.status,
                                  "base_model": model.base_model,
                                  "adapter_perplexity": evaluation.get("adapter_perplexity"),
                                  "base_perplexity": evaluation.get("base_perplexity"),
                                  "created_at": model.created_at,
                                  "current": model.promoted_at is not None,
                                  "latest_version": latest.version} if model else None,
                        "voice_profile": {"created_at": profile.created_at} if profile
                        else None,
                        "deployment": {"name": live[-1].name, "status": live[-1].status,
                                       "version": served.version} if live else None})
    return out


def changed_users(settings: Settings, since, tables: tuple[str, ...] | None = None
                  ) -> tuple[dict[str, Any], set[str]]:
    """(external id -> latest change after *since*, every external id) in one read."""
    with session_scope(settings.database_url) as session:
        return (users.source_changes_since(session, since, tables),
                users.all_external_ids(session))


def remove_user(settings: Settings, external_id: str) -> list[str]:
    """Delete the user's rows in every domain table (and the deleted rows' bytes, see
    reclaim_deleted_rows) and every folder the data root keeps for them (datasets, audio,
    adapters, voice). Returns the folders removed."""
    folders = user_folders(settings, external_id)  # refuses ids that would leave the root
    with session_scope(settings.database_url) as session:
        users.delete_user(session, external_id)
    reclaim_deleted_rows(settings.database_url, users.tables_with_user_rows())
    removed = []
    for folder in folders:
        if folder.exists():
            shutil.rmtree(folder)
            removed.append(str(folder))
    return removed


def require_user(settings: Settings, external_id: str) -> None:
    """Raise UnknownUserError (which says what to do) unless the user exists."""
    with session_scope(settings.database_url) as session:
        users.get_user(session, external_id)
