"""The Dagster code location: assets, checks, jobs, schedules and resources of the warehouse.

- `refresh`: incremental extract of every entity, the model build, the marts and publishing, on a
  schedule (every 5 minutes by default; B24WH_REFRESH_CRON changes it).
- `reconcile`: the same with the deletion sweep forced, nightly (late edits and deletions).
- `backfill`: monthly partitions; each partition reloads that month (by creation date), leaving the
  incremental cursors alone, then runs the model, the marts and publishing like any refresh.
All three run the same assets (`assets.refresh`: one op running the steps of `dagster_project.steps` that
`b24wh refresh` runs) and record their materialisations and check results. The op writes the warehouse in the
`duckdb_writer` pool (limit 1 in dagster.yaml).

Where the settings file lists portals (docs/portals.md), each portal has its own assets (keys and op after
its name, a writer pool of its own: `duckdb_writer_<name>`). `refresh` and `reconcile` run every portal in one
run, the portals in parallel under the multiprocess executor, a failing portal stopping only itself;
`backfill_<name>` is that portal's monthly backfill (portal x month).

The sensor `writer_pools` gives back the writer pools' slots held by runs that have ended or whose processes are
gone (`dagster_project.pools`): a killed run would otherwise hold its portals' refreshes back for ever.
"""
# No `from __future__ import annotations` here: Dagster reads parameter annotations (configs, resources).


from typing import Any

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from assets.refresh import REFRESH_OP, RefreshConfig, refresh_assets
from assets.steps import op_name, pool
from dagster_project.pools import writer_pools_sensor
from dagster_project.resources import Bitrix24Resource, WarehouseResource
from warehouse.settings import Orchestration, Settings, SettingsError, load_settings, orchestration, portal_timezone

# What every step process imports before its step (its instance's storage, the loader of the job's code pointer),
# loaded by the forkserver with the resolved code location (`dagster_project.forkserver`). A module Dagster
# renames is skipped by the forkserver, costing only the time.
STEP_PROCESS_IMPORTS = ["dagster._core.storage.sqlite_storage", "dagster._utils.test.definitions"]
# The jobs whose step processes the forkserver forks (the others run one portal: Dagster's default executor).
FORKED_JOBS = ("refresh", "reconcile")


def backfill_job(name: str, portal: str | None, selection: dg.AssetSelection,
                 monthly: dg.MonthlyPartitionsDefinition) -> UnresolvedAssetJobDefinition:
    def backfill_config(partition_key: str) -> dict[str, Any]:
        """The month's window (by creation date) for the extract step; the other steps run as in any refresh."""
        window = monthly.time_window_for_partition_key(partition_key)
        extract = RefreshConfig(backfill_start=window.start.date().isoformat(),
                                backfill_end=window.end.date().isoformat())
        return {"ops": {op_name(REFRESH_OP, portal): {"config": extract.model_dump()}}}

    return dg.define_asset_job(
        name, selection=selection,
        description="Reload one month of history (by creation date), cursors untouched; then the model, marts, "
                    "publishing" + (f" (portal {portal})." if portal else "."),
        config=dg.PartitionedConfig(partitions_def=monthly, run_config_for_partition_key_fn=backfill_config))


def build_definitions(settings: Settings, schedules: Orchestration, timezone: str) -> dg.Definitions:
    """The code location for the settings: one portal as always, or every listed portal side by side."""
    portals: list[str | None] = [p.name for p in settings.portals] or [None]
    by_portal = {portal: refresh_assets(portal) for portal in portals}
    everything = dg.AssetSelection.assets(*by_portal.values())
    monthly = dg.MonthlyPartitionsDefinition(start_date=schedules.backfill_start, timezone=timezone)
    sweep = {"config": RefreshConfig(force_sweep=True).model_dump()}
    # Listed portals' refreshes mostly wait on their portals' rate limits: as many at once as there are portals
    # (each portal's own pool still lets one writer at a time), each forked from a server that has loaded the
    # code location once (a fresh interpreter per op costs seconds of imports). One portal: Dagster's default.
    parallel = ({"execution": {"config": {"multiprocess": {
        "max_concurrent": len(portals),
        "start_method": {"forkserver": {"preload_modules": ["dagster_project.forkserver"]}}}}}}
        if settings.portals else {})
    refresh_job = dg.define_asset_job(
        FORKED_JOBS[0], selection=everything, description="Incremental extract, the model, the marts, publishing.",
        config=parallel or None)
    reconcile_job = dg.define_asset_job(
        FORKED_JOBS[1], selection=everything,
        description="Refresh with the deletion sweep forced (late edits, deletions).",
        config={**parallel, "ops": {op_name(REFRESH_OP, portal): sweep for portal in portals}})
    backfills = [backfill_job(f"backfill_{portal}" if portal else "backfill", portal, dg.AssetSelection.assets(assets),
                              monthly)
                 for portal, assets in by_portal.items()]
    return dg.Definitions(
        assets=list(by_portal.values()),
        jobs=[refresh_job, reconcile_job, *backfills],
        schedules=[
            dg.ScheduleDefinition(job=refresh_job, cron_schedule=schedules.refresh_cron,
                                  execution_timezone=timezone, default_status=dg.DefaultScheduleStatus.RUNNING),
            dg.ScheduleDefinition(job=reconcile_job, cron_schedule=schedules.reconcile_cron,
                                  execution_timezone=timezone, default_status=dg.DefaultScheduleStatus.RUNNING),
        ],
        sensors=[writer_pools_sensor([pool(portal) for portal in portals])],
        resources={"bitrix24": Bitrix24Resource(), "warehouse": WarehouseResource(timezone=timezone)},
    )


try:
    SETTINGS = load_settings()      # also what the forkserver shares the cores by (`dagster_project.forkserver`)
    defs = build_definitions(SETTINGS, orchestration(), portal_timezone())
except SettingsError as bad:   # the code location stops with the one line that names the setting
    raise SettingsError(str(bad)) from None
