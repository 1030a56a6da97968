"""The refresh as one Dagster op per portal: a multi-asset holding every step's assets (the raw entities, the core
tables, the marts, the publication) and their checks, running the selected steps of `dagster_project.steps` in
order in one process, as `b24wh refresh` does (`each_step`).

Each step's materialisations are reported as it ends, then its checks' results; a failing check stops the steps
after it, as a blocking check would. A subset runs only the steps it touches (only some entities: a dlt run of
those). The request is built from the resources (for a listed portal, from its own settings and credentials:
`dagster_project.portals`), and a failure is shown as the command line shows it: one line saying what happened
and what to do, never a driver's traceback.

One op rather than one per step: a step process costs Dagster seconds of its own, which ten portals' incremental
refreshes on two cores cannot afford (docs/portals.md)."""
# No `from __future__ import annotations` here: Dagster reads parameter annotations (configs, resources).

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import replace
from typing import Any

import dagster as dg

from assets.ingestion import raw_results, raw_specs, selected_entities
from assets.model import core_results, core_specs, mart_results, mart_specs, published_results, published_specs
from assets.steps import check_specs, op_name, pool, table_key
from dagster_project.cli import one_line
from dagster_project.cores import core
from dagster_project.portals import Scope, scopes, update_summary
from dagster_project.resources import Bitrix24Resource, WarehouseResource
from dagster_project.steps import STEP, STEPS, Done, Step, each_step, prepare
from warehouse.settings import Settings
from warehouse.status import clear_error, record_error

log = logging.getLogger(__name__)

REFRESH_OP = "warehouse_refresh"

# Per step: its assets' specs and the materialisations its result makes.
SPECS: dict[str, Callable[[str | None], list[dg.AssetSpec]]] = {
    "extract": raw_specs, "core": core_specs, "marts": mart_specs, "publish": published_specs}
RESULTS: dict[str, Callable[[dg.AssetExecutionContext, Any, str | None], Iterator[dg.MaterializeResult]]] = {
    "extract": raw_results, "core": core_results, "marts": mart_results, "publish": published_results}


class RefreshConfig(dg.Config):
    force_sweep: bool = False   # the deletion sweep runs when due (daily); the nightly reconciliation forces it
    # A backfill window (the `backfill` job's partitions set it): ISO dates, the end exclusive, by `created`
    # or `modified`; cursors are left alone.
    backfill_start: str | None = None
    backfill_end: str | None = None
    backfill_by: str = "created"
    rebuild: bool = False       # rebuild every table in full instead of only what the latest loads touched


def refresh_assets(portal: str | None = None) -> dg.AssetsDefinition:
    """The portal's refresh (`portal` None: the deployment's only portal)."""
    specs = {name: SPECS[name](portal) for name in STEP}

    @dg.multi_asset(
        name=op_name(REFRESH_OP, portal),
        specs=[spec for step_specs in specs.values() for spec in step_specs],
        check_specs=[spec for step in STEPS for spec in check_specs(step, portal)],
        can_subset=True,
        pool=pool(portal),
    )
    def warehouse_refresh(context: dg.AssetExecutionContext, config: RefreshConfig, bitrix24: Bitrix24Resource,
                          warehouse: WarehouseResource) -> Iterator[object]:
        steps = [s for s in STEPS if any(spec.key in context.selected_asset_keys for spec in specs[s.name])]
        backfill = ({"start": config.backfill_start, "end": config.backfill_end, "by": config.backfill_by}
                    if config.backfill_start and config.backfill_end else None)
        where, last = (warehouse.file if portal is None else None), None
        try:
            scope = scope_of(warehouse, portal)
            where = scope.warehouse
            if portal is None:
                source = bitrix24.source_options()
            else:
                source = {**bitrix24.plan_option(), **scope.source_options()}
            together = len(context.job_def.nodes)     # the run's refreshes, which run at once
            settings = shared_threads(scope.settings, together)
            context.log.info(f"DuckDB threads: {settings.threads} ({together} refreshes in the run)")
            request = prepare(scope.warehouse, settings=settings, timezone=scope.timezone, source=source,
                              entities=selected_entities(context, portal), backfill=backfill,
                              sweep=True if config.force_sweep else None, rebuild=config.rebuild)
            with closing(each_step(request, steps, core(context.log.info))) as done_steps:
                for last in done_steps:
                    yield from RESULTS[last.step.name](context, last.result, portal)
                    yield from check_results(context, last, portal)
        except Exception as exc:
            line = one_line(exc, where)
            if where is not None:    # for `b24wh status` and the partner's summary, as the command line records it
                record_error(where, f"{failed_step(steps, last)} (Dagster)", line)
            summarise(portal, warehouse)
            raise dg.Failure(description=line, allow_retries=False) from None
        if steps and steps[-1] is STEPS[-1]:
            clear_error(scope.warehouse)
            summarise(portal, warehouse)

    return warehouse_refresh


def scope_of(warehouse: WarehouseResource, portal: str | None) -> Scope:
    """Where the refresh works: a listed portal's own files and settings, else the resource's warehouse."""
    settings = warehouse.settings()
    if portal is None:
        return Scope(None, warehouse.file, settings, warehouse.timezone)
    return scopes(settings, [portal])[0]


def shared_threads(settings: Settings, together: int, cores: int | None = None) -> Settings:
    """The settings for one of `together` refreshes running at once: the machine's cores (`cores`, None: this
    machine's) shared among them, at least one thread each and at most `[warehouse] threads`. Ten portals on two
    cores each given two threads took more CPU and longer cycles than at one (docs/portals.md)."""
    share = (cores or os.cpu_count() or 1) // together
    return replace(settings, threads=max(1, min(settings.threads, share)))


def check_results(context: dg.AssetExecutionContext, done: Done, portal: str | None
                  ) -> Iterator[dg.AssetCheckResult]:
    for check, bad in done.violations.items():
        asset = table_key(check.table, portal)
        if dg.AssetCheckKey(asset, check.name) in context.selected_asset_check_keys:
            yield dg.AssetCheckResult(asset_key=asset, check_name=check.name, passed=bad == 0,
                                      metadata={"violations": bad})


def failed_step(steps: list[Step], last: Done | None) -> str:
    """The step a failure stopped: the last one done when its check failed, else the one after it."""
    if last is not None and not last.passed:
        return last.step.name
    after = steps.index(last.step) + 1 if last is not None else 0
    return steps[after].name if after < len(steps) else "refresh"


def summarise(portal: str | None, warehouse: WarehouseResource) -> None:
    """The partner's summary after a listed portal's refresh or failure; its own failure only logged (the
    portal's run is what the step reports)."""
    if portal is None:
        return
    try:
        update_summary(warehouse.settings())
    except Exception as exc:
        log.warning("the partner summary was not updated: %s", one_line(exc))


warehouse_refresh = refresh_assets()
