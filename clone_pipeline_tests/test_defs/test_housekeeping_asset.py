"""The housekeeping asset: a thin shell over services.housekeeping that reports what it did
and each user's disk use as materialisation metadata (the service is tested in
test_operate/test_housekeeping.py)."""

import dagster as dg

from clone_pipeline.defs.assets_maintenance import housekeeping_report
from clone_pipeline.defs.resources import CloneSettings


def test_the_housekeeping_asset_reports_disk_use_per_user(sqlite_env_settings, instance):
    settings = sqlite_env_settings
    (settings.home / "audio" / "ada").mkdir(parents=True)
    (settings.home / "audio" / "ada" / "a.wav").write_bytes(b"\0" * 2**20)
    result = dg.materialize([housekeeping_report], instance=instance,
                            resources={"clone": CloneSettings()})
    metadata = result.asset_materializations_for_node("housekeeping_report")[0].metadata
    assert metadata["disk_total_mib"].value == 1.0
    # datasets, audio, adapters, voice, memory, facts, total
    assert "| ada | 0.0 | 1.0 | 0.0 | 0.0 | 0.0 | 0.0 | 1.0 |" in \
        metadata["disk_by_user_mib"].value
    assert metadata["runs_archived"].value == 0
