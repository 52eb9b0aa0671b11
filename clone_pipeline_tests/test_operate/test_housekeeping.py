"""Housekeeping frees the files of expired, unneeded training output and keeps every row;
nothing a deployment, a user's current or newest evaluated version or a workflow in progress
needs is touched (SQLite and PostgreSQL)."""

from datetime import timedelta
from pathlib import Path

import pytest

from clone_pipeline.db.models import (
    ModelDeployment,
    ModelVersion,
    TrainingMetric,
    TrainingRun,
    TrainingWorkflow,
    User,
    utcnow,
)
from clone_pipeline.db.session import session_scope
from clone_pipeline.services.housekeeping import METRIC_POINTS, housekeep

OLD, RECENT = timedelta(days=40), timedelta(days=5)


def _output(settings, name: str) -> tuple[str, str]:
    """A run's checkpoint and adapter folders, with bytes in them."""
    folder = settings.home / "adapters" / "ada" / name
    for part in ("checkpoint", "adapter"):
        (folder / part).mkdir(parents=True)
        (folder / part / "weights.bin").write_bytes(b"\0" * 4096)
    return str(folder / "checkpoint"), str(folder / "adapter")


@pytest.fixture
def history(settings, tmp_path):
    """ada's training history, 40 days old unless said otherwise:
    v1 deployed; v2 evaluated but superseded by v3 (newest evaluated); a cancelled run with
    no version; a run of a workflow still running; a recent run; a run recorded with a
    checkpoint outside the data root."""
    now = utcnow()
    outside = tmp_path / "elsewhere" / "checkpoint"
    outside.mkdir(parents=True)
    (outside / "keep.bin").write_bytes(b"1")
    paths = {name: _output(settings, name) for name in
             ("v1", "v2", "v3", "cancelled", "busy", "recent")}
    ids = {}
    with session_scope(settings.database_url) as s:
        user = User(external_id="ada", display_name="Ada")
        s.add(user)
        s.flush()

        def run(name, age, status="completed", dagster_run_id=None, checkpoint=None):
            row = TrainingRun(user_id=user.id, status=status, started_at=now - age,
                              finished_at=now - age, dagster_run_id=dagster_run_id,
                              checkpoint_path=checkpoint or paths[name][0])
            s.add(row)
            s.flush()
            ids[name] = row.id
            return row

        for number, name, status in ((1, "v1", "trained"), (2, "v2", "evaluated"),
                                     (3, "v3", "evaluated")):
            made = run(name, OLD)
            version = ModelVersion(user_id=user.id, training_run_id=made.id, version=number,
                                   base_model="local-tiny", adapter_path=paths[name][1],
                                   status=status, created_at=now - OLD)
            s.add(version)
            s.flush()
            ids[f"version-{name}"] = version.id
        s.add(ModelDeployment(user_id=user.id, model_version_id=ids["version-v1"],
                              name="ada-v1", status="active", adapter_name="ada-v1-r1"))
        s.add_all(TrainingMetric(training_run_id=ids["v2"], step=step, loss=1.0,
                                 eval_loss=0.5 if step % 250 == 0 else None)
                  for step in range(1, 1001))
        run("cancelled", OLD, status="cancelled")
        run("busy", OLD, dagster_run_id="busy-run")
        s.add(TrainingWorkflow(user_id=user.id, status="running", dagster_run_id="busy-run",
                               stages={}))
        run("recent", RECENT)
        run("outside", OLD, checkpoint=str(outside))
    return paths, ids, outside


def test_expired_unneeded_output_is_removed_and_everything_needed_is_kept(settings, history):
    paths, ids, outside = history
    report = housekeep(settings)
    gone = {name for name, (checkpoint, adapter) in paths.items()
            if not Path(checkpoint).exists()}
    assert gone == {"v2", "cancelled"}
    assert not Path(paths["v2"][1]).exists()  # v2's adapter too
    for name in ("v1", "v3"):  # deployed; newest evaluated
        assert all(Path(p).exists() for p in paths[name])
    assert (outside / "keep.bin").exists()  # never outside the data root
    assert report.bytes_freed == 3 * 4096
    assert report.kept == {"deployed": 1, "newest evaluated": 1}
    with session_scope(settings.database_url) as s:
        archived = {name for name, key in ids.items()
                    if (s.get(TrainingRun, key) or s.get(ModelVersion, key)).archived_at}
        metrics = s.query(TrainingMetric).filter_by(training_run_id=ids["v2"]).all()
    assert archived == {"v2", "version-v2", "cancelled", "outside"}
    steps = sorted(m.step for m in metrics)
    assert len(steps) <= METRIC_POINTS + 4 and steps[0] == 1 and steps[-1] == 1000
    assert {250, 500, 750, 1000} <= set(steps)  # every evaluation survives
    assert report.disk_by_user["ada"]["adapters"] > 0

    again = housekeep(settings)  # nothing left to do
    assert (again.runs_archived, again.versions_archived, again.bytes_freed) == (0, 0, 0)


def test_a_longer_retention_keeps_more_and_a_zero_retention_is_refused(settings, history):
    paths, _, _ = history
    report = housekeep(settings, retention_days=60)
    assert (report.runs_archived, report.versions_archived) == (0, 0)
    assert all(Path(p).exists() for pair in paths.values() for p in pair)
    with pytest.raises(ValueError, match="at least 1"):
        housekeep(settings, retention_days=0)
