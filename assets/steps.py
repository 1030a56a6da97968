"""A refresh step (`dagster_project.steps`) run as a Dagster asset: its request built from the resources (for a
listed portal, from that portal's own settings and credentials: `dagster_project.portals`), its failure shown as
the command line shows it (one line saying what happened and what to do, never a driver's traceback), and its
checks reported as asset check results.

A listed portal's assets carry its name first in their keys (`north/warehouse/core/fact_deal`), its name in
their op names, and a writer pool of their own (`duckdb_writer_north`): never two writers on one warehouse,
while different portals' steps run in parallel."""
# No `from __future__ import annotations` here, as in the other asset modules.

import logging
from collections.abc import Iterator
from typing import Any

import dagster as dg
import duckdb

from dagster_project.cli import one_line
from dagster_project.portals import Scope, scopes, update_summary
from dagster_project.resources import WRITER_POOL, Bitrix24Resource, WarehouseResource
from dagster_project.steps import STEPS, Step, prepare, run_step
from warehouse.checks import violations
from warehouse.status import clear_error, record_error

log = logging.getLogger(__name__)


def key(portal: str | None, *path: str) -> dg.AssetKey:
    """An asset's key: `path`, after the portal's name for a listed portal."""
    return dg.AssetKey([*([portal] if portal else []), *path])


def table_key(relation: str, portal: str | None = None) -> dg.AssetKey:
    """`core.fact_deal` -> warehouse/core/fact_deal (north/warehouse/core/fact_deal for portal north)."""
    return key(portal, "warehouse", *relation.split("."))


def op_name(name: str, portal: str | None) -> str:
    return f"{portal}__{name}" if portal else name


def pool(portal: str | None) -> str:
    return f"{WRITER_POOL}_{portal}" if portal else WRITER_POOL


def check_specs(step: Step, portal: str | None) -> list[dg.AssetCheckSpec]:
    return [dg.AssetCheckSpec(c.name, asset=table_key(c.table, portal), description=c.description, blocking=True)
            for c in step.checks]


def scope_of(warehouse: WarehouseResource, portal: str | None) -> Scope:
    """Where the step works: a listed portal's own files and settings, else the resource's warehouse."""
    settings = warehouse.settings()
    if portal is None:
        return Scope(None, warehouse.file, settings, warehouse.timezone)
    return scopes(settings, [portal])[0]


def run_as_asset(step: Step, portal: str | None, warehouse: WarehouseResource,
                 bitrix24: Bitrix24Resource | None = None, **options: Any) -> Any:
    """Runs the step as the command line does (settings checked first, under the writer lock); its checks are
    Dagster's blocking asset checks (`check_results`), so that Dagster records each one. A listed portal's
    credentials come from its own name only (`Scope.source_options`), never from the resource."""
    where = warehouse.file if portal is None else None
    try:
        scope = scope_of(warehouse, portal)
        where = scope.warehouse
        if portal is None:
            source = bitrix24.source_options() if bitrix24 else {}
        else:
            source = {**(bitrix24.plan_option() if bitrix24 else {}), **scope.source_options()}
        request = prepare(scope.warehouse, settings=scope.settings, timezone=scope.timezone, source=source,
                          **options)
        result = run_step(step, request)
    except dg.Failure:
        raise
    except Exception as exc:
        line = one_line(exc, where)
        if where is not None:    # for `b24wh status` and the partner's summary, as the command line records it
            record_error(where, f"{step.name} (Dagster)", line)
        _summarise(portal, warehouse)
        raise dg.Failure(description=line, allow_retries=False) from None
    if step is STEPS[-1]:
        clear_error(scope.warehouse)
        _summarise(portal, warehouse)
    return result


def _summarise(portal: str | None, warehouse: WarehouseResource) -> None:
    """The partner's summary after a listed portal's last step or failure; its own failure only logged (the
    portal's run is what the step reports)."""
    if portal is None:
        return
    try:
        update_summary(warehouse.settings())
    except Exception as exc:
        log.warning("the partner summary was not updated: %s", one_line(exc))


def check_results(step: Step, portal: str | None, warehouse: WarehouseResource) -> Iterator[dg.AssetCheckResult]:
    with duckdb.connect(str(scope_of(warehouse, portal).warehouse), read_only=True) as con:
        for check in step.checks:
            bad = violations(con, check)
            yield dg.AssetCheckResult(asset_key=table_key(check.table, portal), check_name=check.name,
                                      passed=bad == 0, metadata={"violations": bad})
