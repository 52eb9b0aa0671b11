"""Housekeeping: free the disk that old, unneeded training output holds, keep every row.

After the retention period (``CLONE_RETENTION_DAYS``, 30 by default) a finished training
run's checkpoint and a model version's adapter files are removed and the row marked
``archived_at``; an archived run's ``training_metrics`` are thinned to a few hundred points
(the loss curve keeps its shape and every evaluation). Never touched: a version a live
deployment serves, each user's current and newest evaluated version (and the checkpoints of
the runs that made them), and anything of a workflow still queued or running.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from clone_pipeline.db import deployments, training, workflows
from clone_pipeline.db.models import utcnow
from clone_pipeline.db.session import analyze_tables, session_scope
from clone_pipeline.db.statuses import ModelVersionStatus
from clone_pipeline.db.users import as_utc
from clone_pipeline.files import USER_FOLDER_KINDS, remove_path
from clone_pipeline.settings import Settings

METRIC_POINTS = 200  # training_metrics rows an archived run keeps (about)


@dataclass
class HousekeepingReport:
    cutoff: datetime
    runs_archived: int = 0
    versions_archived: int = 0
    metric_rows_removed: int = 0
    bytes_freed: int = 0
    kept: dict[str, int] = field(default_factory=dict)  # why -> how many versions
    disk_by_user: dict[str, dict[str, int]] = field(default_factory=dict)  # user -> kind -> B
    analyzed: bool = False  # VACUUM ANALYZE ran (PostgreSQL)


def housekeep(settings: Settings, retention_days: int | None = None,
              now: datetime | None = None) -> HousekeepingReport:
    """Archive what has expired; returns what was done and the disk use per user."""
    days = retention_days if retention_days is not None else settings.retention_days
    if days < 1:
        raise ValueError(f"retention_days must be at least 1, not {days}")
    report = HousekeepingReport(cutoff=(now or utcnow()) - timedelta(days=days))
    runs, versions = _expired(settings, report)
    for run_id, checkpoint in runs:
        report.bytes_freed += _remove_inside(settings, checkpoint)
        with session_scope(settings.database_url) as session:
            training.mark_archived(session, training.get_run(session, run_id))
            report.metric_rows_removed += training.thin_metrics(session, run_id,
                                                                METRIC_POINTS)
        report.runs_archived += 1
    for version_id, adapter in versions:
        report.bytes_freed += _remove_inside(settings, adapter)
        with session_scope(settings.database_url) as session:
            training.mark_archived(session, training.get_version(session, version_id))
        report.versions_archived += 1
    report.disk_by_user = disk_use(settings)
    report.analyzed = analyze_tables(settings.database_url, ["training_metrics"])
    return report


def _expired(settings: Settings, report: HousekeepingReport
             ) -> tuple[list[tuple[uuid.UUID, str | None]], list[tuple[uuid.UUID, str | None]]]:
    """(runs, versions) past the cutoff that nothing needs, as (id, path) pairs."""
    with session_scope(settings.database_url) as session:
        busy = {w.dagster_run_id for w, _ in workflows.unfinished(session) if w.dagster_run_id}
        versions = training.all_versions(session)
        reasons: dict[uuid.UUID, str] = {}
        for d in deployments.live(session):
            reasons[d.model_version_id] = "deployed"
        by_user: dict[uuid.UUID, list] = defaultdict(list)
        for v in versions:
            by_user[v.user_id].append(v)
            if v.dagster_run_id in busy:
                reasons.setdefault(v.id, "workflow in progress")
        for own in by_user.values():
            evaluated = [v for v in own if v.status == ModelVersionStatus.EVALUATED]
            if evaluated:
                reasons.setdefault(max(evaluated, key=lambda v: v.version).id,
                                   "newest evaluated")
            promoted = [v for v in own if v.promoted_at is not None]
            if promoted:
                reasons.setdefault(max(promoted, key=lambda v: as_utc(v.promoted_at)).id,
                                   "current")
        kept_runs = {v.training_run_id for v in versions if v.id in reasons}
        runs = [(r.id, r.checkpoint_path) for r in training.finished_unarchived_runs(session)
                if r.finished_at is not None and as_utc(r.finished_at) < report.cutoff
                and r.dagster_run_id not in busy and r.id not in kept_runs]
        expired = [(v.id, v.adapter_path) for v in versions
                   if v.archived_at is None and as_utc(v.created_at) < report.cutoff
                   and v.id not in reasons]
    for why in reasons.values():
        report.kept[why] = report.kept.get(why, 0) + 1
    return runs, expired


def _remove_inside(settings: Settings, recorded: str | None) -> int:
    """Remove a recorded file or folder if it lies inside the data root; returns the bytes
    it held (0 when it is gone already or lies elsewhere)."""
    if not recorded:
        return 0
    path = Path(recorded)
    path = (path if path.is_absolute() else settings.home / path).resolve()
    if not path.is_relative_to(settings.home.resolve()) or not path.exists():
        return 0
    size = _size(path)
    remove_path(path)
    return size


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def disk_use(settings: Settings) -> dict[str, dict[str, int]]:
    """Bytes each user's folders hold in the data root, by kind (datasets, audio, ...)."""
    use: dict[str, dict[str, int]] = defaultdict(dict)
    for kind in USER_FOLDER_KINDS:
        base = settings.home / kind
        if not base.is_dir():
            continue
        for folder in sorted(p for p in base.iterdir() if p.is_dir()):
            use[folder.name][kind] = _size(folder)
    return {user: {kind: kinds.get(kind, 0) for kind in USER_FOLDER_KINDS}
            for user, kinds in sorted(use.items())}
