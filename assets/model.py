"""The model, marts and publish steps' assets: the core star schema (`warehouse/core/<table>`), built in one
transaction, incrementally; the report marts (`warehouse/marts/<table>`), built after it in a transaction of
their own; and their publication for BI tools (`warehouse/published`). A listed portal's assets carry its name
first in their keys (`assets.steps`)."""
# No `from __future__ import annotations` here: Dagster reads annotations in the asset modules.

from collections.abc import Iterator

import dagster as dg

from assets.ingestion import raw_key
from assets.steps import key, op_name, table_key
from warehouse.build import Built
from warehouse.catalogue import CORE_TABLES, MART_TABLES, RAW_INPUTS
from warehouse.marts import RAW_READS, MartsBuilt
from warehouse.publish import Published


def core_specs(portal: str | None) -> list[dg.AssetSpec]:
    return [dg.AssetSpec(table_key(f"core.{name}", portal), group_name=op_name("warehouse_core", portal),
                         kinds={"duckdb"}, deps=[raw_key(e, portal) for e in RAW_INPUTS],
                         description=f"core.{name} (warehouse/models/core/{name}.sql)") for name in CORE_TABLES]


def mart_specs(portal: str | None) -> list[dg.AssetSpec]:
    return [dg.AssetSpec(table_key(f"marts.{name}", portal), group_name=op_name("warehouse_marts", portal),
                         kinds={"duckdb"},
                         deps=[*(table_key(f"core.{t}", portal) for t in CORE_TABLES),
                               *(raw_key(e, portal) for e in RAW_READS)],
                         description=f"marts.{name} (warehouse/models/marts/{name}.sql)") for name in MART_TABLES]


def published_specs(portal: str | None) -> list[dg.AssetSpec]:
    return [dg.AssetSpec(
        key(portal, "warehouse", "published"), group_name=op_name("warehouse_published", portal),
        kinds={"duckdb", "parquet", "postgresql"}, deps=[table_key(f"marts.{name}", portal) for name in MART_TABLES],
        description="The core tables and marts published for BI tools: a read-only DuckDB file swapped atomically, "
                    "Parquet files, and the SQL database B24WH_PUBLISH_URL names (docs/publishing.md).")]


def core_results(context: dg.AssetExecutionContext, built: Built,
                 portal: str | None) -> Iterator[dg.MaterializeResult]:
    context.log.info("%s model build in %.1f s: %s", built.mode, built.seconds, built.reason)
    for table, rows in built.counts.items():
        yield dg.MaterializeResult(asset_key=table_key(f"core.{table}", portal), metadata={
            "dagster/row_count": rows, "build_mode": built.mode, "build_seconds": round(built.seconds, 2)})


def mart_results(context: dg.AssetExecutionContext, built: MartsBuilt,
                 portal: str | None) -> Iterator[dg.MaterializeResult]:
    context.log.info("%s marts build as of %s in %.1f s: %s", built.mode, built.as_of, built.seconds, built.reason)
    for table, rows in built.counts.items():
        yield dg.MaterializeResult(asset_key=table_key(f"marts.{table}", portal), metadata={"dagster/row_count": rows})


def published_results(context: dg.AssetExecutionContext, published: Published,
                      portal: str | None) -> Iterator[dg.MaterializeResult]:
    context.log.info("published version %s to %s", published.version, ", ".join(published.locations))
    yield dg.MaterializeResult(asset_key=key(portal, "warehouse", "published"), metadata={
        "version": published.version,
        **{f"{target}_location": where for target, where in published.locations.items()},
        **{f"{target}_seconds": round(seconds, 2) for target, seconds in published.seconds.items()},
        **{f"{target}_mode": mode for target, mode in published.modes.items()}})
