"""housekeeping_report: the nightly clean-up of old training output, and disk use per user."""

import dagster as dg
from pydantic import Field

from clone_pipeline.defs.metadata import table
from clone_pipeline.defs.resources import CloneSettings
from clone_pipeline.files import USER_FOLDER_KINDS
from clone_pipeline.services.housekeeping import housekeep


class HousekeepingConfig(dg.Config):
    retention_days: int = Field(default=0, ge=0,
                                description="Archive what finished more than this many days "
                                            "ago (0 = CLONE_RETENTION_DAYS, 30 by default).")


@dg.asset(
    group_name="maintenance",
    kinds={"python", "sql"},
    description="Removes the checkpoints and adapter files of old training runs and model "
                "versions nothing needs (never a deployed, current or newest evaluated "
                "version, nor anything of a workflow in progress), keeps their rows, thins "
                "archived runs' metrics, and reports each user's disk use.",
)
def housekeeping_report(context: dg.AssetExecutionContext, config: HousekeepingConfig,
                        clone: CloneSettings) -> dg.MaterializeResult:
    report = housekeep(clone.settings(), config.retention_days or None)
    context.log.info(f"archived {report.runs_archived} run(s) and {report.versions_archived} "
                     f"version(s), freed {report.bytes_freed / 2**20:.1f} MiB")
    mib = 2**20
    rows = [[user, *(f"{kinds[k] / mib:.1f}" for k in USER_FOLDER_KINDS),
             f"{sum(kinds.values()) / mib:.1f}"] for user, kinds in report.disk_by_user.items()]
    return dg.MaterializeResult(metadata={
        "cutoff": report.cutoff.isoformat(timespec="seconds"),
        "runs_archived": report.runs_archived,
        "versions_archived": report.versions_archived,
        "metric_rows_removed": report.metric_rows_removed,
        "freed_mib": round(report.bytes_freed / mib, 2),
        "kept": dg.MetadataValue.json(report.kept),
        "disk_total_mib": round(sum(sum(k.values()) for k in report.disk_by_user.values())
                                / mib, 2),
        "disk_by_user_mib": table(["user", *USER_FOLDER_KINDS, "total"], rows),
        "vacuum_analyze": report.analyzed,
    })
