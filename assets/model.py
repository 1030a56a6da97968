"""The model, marts and publish steps as assets: the core star schema (`warehouse/core/<table>`), built in one
transaction, incrementally; the report marts (`warehouse/marts/<table>`), built after it in a transaction
of their own; and their publication for BI tools (`warehouse/published`). Every table has blocking checks
(`warehouse.checks`): a failing core check stops the marts, a failing mart check stops publishing. A listed
portal's assets carry its name first in their keys (`assets.steps`)."""
# No `from __future__ import annotations` here: Dagster reads parameter annotations (configs, resources).


from collections.abc import Iterator

import dagster as dg

from assets.ingestion import raw_key
from assets.steps import check_results, check_specs, key, op_name, pool, run_as_asset, table_key
from dagster_project.resources import WarehouseResource
from dagster_project.steps import STEP
from warehouse.catalogue import CORE_TABLES, MART_TABLES, RAW_INPUTS
from warehouse.marts import RAW_READS


class ModelConfig(dg.Config):
    rebuild: bool = False   # rebuild every table in full instead of only what the latest loads touched


def model_assets(portal: str | None = None) -> list[dg.AssetsDefinition]:
    """The portal's core, marts and publish steps (`portal` None: the deployment's only portal)."""

    def core_key(table: str) -> dg.AssetKey:
        return table_key(f"core.{table}", portal)

    @dg.multi_asset(
        name=op_name("warehouse_core", portal),
        specs=[dg.AssetSpec(core_key(name), group_name=op_name("warehouse_core", portal), kinds={"duckdb"},
                            deps=[raw_key(e, portal) for e in RAW_INPUTS],
                            description=f"core.{name} (warehouse/models/core/{name}.sql)") for name in CORE_TABLES],
        check_specs=check_specs(STEP["core"], portal),
        pool=pool(portal),
    )
    def warehouse_core(context: dg.AssetExecutionContext, config: ModelConfig,
                       warehouse: WarehouseResource) -> Iterator[object]:
        built = run_as_asset(STEP["core"], portal, warehouse, rebuild=config.rebuild)
        context.log.info("%s model build in %.1f s: %s", built.mode, built.seconds, built.reason)
        for table, rows in built.counts.items():
            yield dg.MaterializeResult(asset_key=core_key(table), metadata={
                "dagster/row_count": rows, "build_mode": built.mode, "build_seconds": round(built.seconds, 2)})
        yield from check_results(STEP["core"], portal, warehouse)

    @dg.multi_asset(
        name=op_name("warehouse_marts", portal),
        specs=[dg.AssetSpec(table_key(f"marts.{name}", portal), group_name=op_name("warehouse_marts", portal),
                            kinds={"duckdb"},
                            deps=[*(core_key(t) for t in CORE_TABLES), *(raw_key(e, portal) for e in RAW_READS)],
                            description=f"marts.{name} (warehouse/models/marts/{name}.sql)") for name in MART_TABLES],
        check_specs=check_specs(STEP["marts"], portal),
        pool=pool(portal),
    )
    def warehouse_marts(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> Iterator[object]:
        built = run_as_asset(STEP["marts"], portal, warehouse)
        context.log.info("%s marts build as of %s in %.1f s: %s", built.mode, built.as_of, built.seconds, built.reason)
        for table, rows in built.counts.items():
            yield dg.MaterializeResult(asset_key=table_key(f"marts.{table}", portal),
                                       metadata={"dagster/row_count": rows})
        yield from check_results(STEP["marts"], portal, warehouse)

    @dg.asset(
        key=key(portal, "warehouse", "published"),
        group_name=op_name("warehouse_published", portal),
        kinds={"duckdb", "parquet", "postgresql"},
        deps=[table_key(f"marts.{name}", portal) for name in MART_TABLES],
        description="The core tables and marts published for BI tools: a read-only DuckDB file swapped atomically, "
                    "Parquet files, and the SQL database B24WH_PUBLISH_URL names (docs/publishing.md).",
        pool=pool(portal),
    )
    def warehouse_published(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        published = run_as_asset(STEP["publish"], portal, warehouse)
        context.log.info("published version %s to %s", published.version, ", ".join(published.locations))
        return dg.MaterializeResult(metadata={
            "version": published.version,
            **{f"{target}_location": where for target, where in published.locations.items()},
            **{f"{target}_seconds": round(seconds, 2) for target, seconds in published.seconds.items()},
            **{f"{target}_mode": mode for target, mode in published.modes.items()}})

    return [warehouse_core, warehouse_marts, warehouse_published]


warehouse_core, warehouse_marts, warehouse_published = model_assets()
