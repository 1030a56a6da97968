"""The model, marts and publish steps' assets: the core star schema (`warehouse/core/<table>`), built in one
transaction, incrementally; the report marts (`warehouse/marts/<table>`), built after it in a transaction of
their own; and their publication for BI tools (`warehouse/published`). A listed portal's assets carry its name
first in their keys (`assets.steps`)."""
# No `from __future__ import annotations` here: Dagster reads annotations in the asset modules.

from collections.abc import Iterator

import dagster as dg

from assets.ingestion import raw_table_key
from assets.steps import key, op_name, table_key
from warehouse.build import Built
from warehouse.catalogue import MARTS, MODELS, Model, lineage
from warehouse.marts import GENERATED_RELATIONS, MartsBuilt
from warehouse.publish import PUBLISHED, Published

# What each core table and mart is made from, as its SQL reads it (the relations the builds make in code declare
# what they read beside their code): the same for every portal, so found once.
INPUTS = lineage(GENERATED_RELATIONS)


def input_keys(model: Model, portal: str | None) -> list[dg.AssetKey]:
    """The assets a core table or mart depends on."""
    return [raw_table_key(r, portal) if r.startswith("raw.") else table_key(r, portal)
            for r in sorted(INPUTS[model.relation])]


def core_specs(portal: str | None) -> list[dg.AssetSpec]:
    return [dg.AssetSpec(table_key(m.relation, portal), group_name=op_name("warehouse_core", portal),
                         kinds={"duckdb"}, deps=input_keys(m, portal),
                         description=f"{m.relation} (warehouse/models/core/{m.name}.sql)")
            for m in MODELS if m.layer == "core"]


def mart_specs(portal: str | None) -> list[dg.AssetSpec]:
    return [dg.AssetSpec(table_key(m.relation, portal), group_name=op_name("warehouse_marts", portal),
                         kinds={"duckdb"}, deps=input_keys(m, portal),
                         description=f"{m.relation} (warehouse/models/marts/{m.name}.sql)")
            for m in MARTS if m.layer == "marts"]


def published_specs(portal: str | None) -> list[dg.AssetSpec]:
    return [dg.AssetSpec(
        key(portal, "warehouse", "published"), group_name=op_name("warehouse_published", portal),
        kinds={"duckdb", "parquet", "postgresql"},
        deps=[table_key(f"{schema}.{table}", portal) for schema, table in PUBLISHED],
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
