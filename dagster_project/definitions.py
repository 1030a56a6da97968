"""The Dagster code location: assets, checks, jobs, schedules and resources of the warehouse.

- `refresh`: incremental extract of every entity, the model build, the marts and publishing, on a
  schedule (every 5 minutes by default; B24WH_REFRESH_CRON changes it).
- `reconcile`: the same with the deletion sweep forced, nightly (late edits and deletions).
- `backfill`: monthly partitions; each partition reloads that month (by creation date), leaving the
  incremental cursors alone, then runs the model, the marts and publishing like any refresh.
All three run the same assets, the steps of `dagster_project.steps` that `b24wh refresh` runs, and record
their materialisations and check results.
Every step that writes the warehouse runs in the `duckdb_writer` pool (limit 1 in dagster.yaml).
"""
# No `from __future__ import annotations` here: Dagster reads parameter annotations (configs, resources).


from typing import Any

import dagster as dg

from assets.ingestion import ExtractConfig, bitrix24_raw
from assets.model import warehouse_core, warehouse_marts, warehouse_published
from dagster_project.resources import Bitrix24Resource, WarehouseResource
from warehouse.settings import SettingsError, orchestration, portal_timezone

try:
    TIMEZONE = portal_timezone()
    SCHEDULES = orchestration()
except SettingsError as bad:   # the code location stops with the one line that names the setting
    raise SettingsError(str(bad)) from None
ALL_ASSETS = dg.AssetSelection.assets(bitrix24_raw, warehouse_core, warehouse_marts, warehouse_published)

refresh_job = dg.define_asset_job(
    "refresh", selection=ALL_ASSETS, description="Incremental extract, the model, the marts, publishing.")
reconcile_job = dg.define_asset_job(
    "reconcile", selection=ALL_ASSETS, description="Refresh with the deletion sweep forced (late edits, deletions).",
    config={"ops": {"bitrix24_raw": {"config": ExtractConfig(force_sweep=True).model_dump()}}})

monthly = dg.MonthlyPartitionsDefinition(start_date=SCHEDULES.backfill_start, timezone=TIMEZONE)


def backfill_config(partition_key: str) -> dict[str, Any]:
    """The month's window (by creation date) for the extract step; the other steps run as in any refresh."""
    window = monthly.time_window_for_partition_key(partition_key)
    extract = ExtractConfig(backfill_start=window.start.date().isoformat(), backfill_end=window.end.date().isoformat())
    return {"ops": {"bitrix24_raw": {"config": extract.model_dump()}}}


backfill_job = dg.define_asset_job(
    "backfill", selection=ALL_ASSETS,
    description="Reload one month of history (by creation date), cursors untouched; then the model, marts, publishing.",
    config=dg.PartitionedConfig(partitions_def=monthly, run_config_for_partition_key_fn=backfill_config))

schedules = [
    dg.ScheduleDefinition(job=refresh_job, cron_schedule=SCHEDULES.refresh_cron,
                          execution_timezone=TIMEZONE, default_status=dg.DefaultScheduleStatus.RUNNING),
    dg.ScheduleDefinition(job=reconcile_job, cron_schedule=SCHEDULES.reconcile_cron,
                          execution_timezone=TIMEZONE, default_status=dg.DefaultScheduleStatus.RUNNING),
]

defs = dg.Definitions(
    assets=[bitrix24_raw, warehouse_core, warehouse_marts, warehouse_published],
    jobs=[refresh_job, reconcile_job, backfill_job],
    schedules=schedules,
    resources={
        "bitrix24": Bitrix24Resource(),
        "warehouse": WarehouseResource(timezone=TIMEZONE),
    },
)
