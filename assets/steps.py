"""What the refresh's assets share: their keys, op names and pools, and the checks as asset check specs.

A listed portal's assets carry its name first in their keys (`north/warehouse/core/fact_deal`), its name in
their op names, and a writer pool of their own (`duckdb_writer_north`): never two writers on one warehouse,
while different portals run in parallel."""
# No `from __future__ import annotations` here, as in the other asset modules.

import dagster as dg

from dagster_project.resources import WRITER_POOL
from dagster_project.steps import Step


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
