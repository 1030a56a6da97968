"""A refresh step (`dagster_project.steps`) run as a Dagster asset: its request built from the resources, its
failure shown as the command line shows it (one line saying what happened and what to do, never a driver's
traceback), and its checks reported as asset check results."""
# No `from __future__ import annotations` here, as in the other asset modules.

from collections.abc import Iterator
from typing import Any

import dagster as dg
import duckdb

from dagster_project.cli import one_line
from dagster_project.resources import Bitrix24Resource, WarehouseResource
from dagster_project.steps import Step, prepare, run_step
from warehouse.checks import violations


def table_key(relation: str) -> dg.AssetKey:
    """`core.fact_deal` -> warehouse/core/fact_deal."""
    return dg.AssetKey(["warehouse", *relation.split(".")])


def check_specs(step: Step) -> list[dg.AssetCheckSpec]:
    return [dg.AssetCheckSpec(c.name, asset=table_key(c.table), description=c.description, blocking=True)
            for c in step.checks]


def run_as_asset(step: Step, warehouse: WarehouseResource, bitrix24: Bitrix24Resource | None = None,
                 **options: Any) -> Any:
    """Runs the step as the command line does (settings checked first, under the writer lock); its checks are
    Dagster's blocking asset checks (`check_results`), so that Dagster records each one."""
    try:
        request = prepare(warehouse.file, settings=warehouse.settings(), timezone=warehouse.timezone,
                          source=bitrix24.source_options() if bitrix24 else {}, **options)
        return run_step(step, request)
    except dg.Failure:
        raise
    except Exception as exc:
        raise dg.Failure(description=one_line(exc, warehouse.file), allow_retries=False) from None


def check_results(step: Step, warehouse: WarehouseResource) -> Iterator[dg.AssetCheckResult]:
    with duckdb.connect(str(warehouse.file), read_only=True) as con:
        for check in step.checks:
            bad = violations(con, check)
            yield dg.AssetCheckResult(asset_key=table_key(check.table), check_name=check.name, passed=bad == 0,
                                      metadata={"violations": bad})
