"""The Dagster code location: assets, checks, jobs, schedules and resources of the warehouse.

- `refresh`: incremental extract of every entity, the model build, the marts and publishing, on a
  schedule (every 5 minutes by default; B24WH_REFRESH_CRON changes it).
- `reconcile`: the same with the deletion sweep forced, nightly (late edits and deletions).
- `backfill`: monthly partitions; each partition reloads that month (by creation date) and rebuilds the
  model and the marts, leaving the incremental cursors alone.
Every step that writes the warehouse runs in the `duckdb_writer` pool (limit 1 in dagster.yaml).
"""
# No `from __future__ import annotations` here: Dagster reads parameter annotations (configs, resources).


import os

import dagster as dg

from assets.ingestion import ExtractConfig, bitrix24_raw
from assets.model import warehouse_core, warehouse_marts, warehouse_published
from dagster_project.cli import refresh
from dagster_project.resources import WRITER_POOL, Bitrix24Resource, WarehouseResource
from warehouse.settings import SettingsError, portal_timezone

try:
    TIMEZONE = portal_timezone()
except SettingsError as bad:   # the code location stops with the one line that names the setting
    raise SettingsError(str(bad)) from None
ALL_ASSETS = dg.AssetSelection.assets(bitrix24_raw, warehouse_core, warehouse_marts, warehouse_published)

refresh_job = dg.define_asset_job(
    "refresh", selection=ALL_ASSETS, description="Incremental extract, the model, the marts, publishing.")
reconcile_job = dg.define_asset_job(
    "reconcile", selection=ALL_ASSETS, description="Refresh with the deletion sweep forced (late edits, deletions).",
    config={"ops": {"bitrix24_raw": {"config": ExtractConfig(force_sweep=True).model_dump()}}})

monthly = dg.MonthlyPartitionsDefinition(start_date=os.environ.get("B24WH_BACKFILL_START", "2020-01-01"),
                                         timezone=TIMEZONE)


@dg.op(pool=WRITER_POOL)
def backfill_month(context: dg.OpExecutionContext, bitrix24: Bitrix24Resource, warehouse: WarehouseResource) -> None:
    window = context.partition_time_window
    done = refresh(warehouse.file, webhook_url=bitrix24.webhook_url, timezone=warehouse.portal_timezone,
                   settings=warehouse.settings(),
                   backfill={"start": window.start.isoformat(), "end": window.end.isoformat(), "by": "created"})
    context.log.info("backfilled %s..%s (%s model build: %s): %s", window.start.date(), window.end.date(),
                     done.model.mode, done.model.reason, {**done.model.counts, **done.marts.counts})


@dg.job(partitions_def=monthly, description="Reload one month of history (by creation date); cursors untouched.")
def backfill() -> None:
    backfill_month()


schedules = [
    dg.ScheduleDefinition(job=refresh_job, cron_schedule=os.environ.get("B24WH_REFRESH_CRON", "*/5 * * * *"),
                          execution_timezone=TIMEZONE, default_status=dg.DefaultScheduleStatus.RUNNING),
    dg.ScheduleDefinition(job=reconcile_job, cron_schedule=os.environ.get("B24WH_RECONCILE_CRON", "15 2 * * *"),
                          execution_timezone=TIMEZONE, default_status=dg.DefaultScheduleStatus.RUNNING),
]

defs = dg.Definitions(
    assets=[bitrix24_raw, warehouse_core, warehouse_marts, warehouse_published],
    jobs=[refresh_job, reconcile_job, backfill],
    schedules=schedules,
    resources={
        "bitrix24": Bitrix24Resource(webhook_url=dg.EnvVar("BITRIX24_WEBHOOK_URL"),
                                     plan=os.environ.get("BITRIX24_PLAN", "standard")),
        "warehouse": WarehouseResource(timezone=TIMEZONE, settings_file=os.environ.get("B24WH_CONFIG")),
    },
)
