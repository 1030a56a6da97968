"""The extract step as assets: one per entity of the Bitrix24 source (keys `bitrix24/raw/<entity>`, after the
portal's name for a listed portal), loaded by one dlt run (a subset of entities when only some assets are
selected). The load finishes anything a killed run left behind first."""
# No `from __future__ import annotations` here: Dagster reads parameter annotations (configs, resources).


from collections.abc import Iterator

import dagster as dg

from assets.steps import key, op_name, pool, run_as_asset
from dagster_project.resources import Bitrix24Resource, WarehouseResource
from dagster_project.steps import STEP
from pipelines.bitrix24.catalogue import ENTITIES

RAW_GROUP = "bitrix24_raw"


def raw_key(entity: str, portal: str | None = None) -> dg.AssetKey:
    return key(portal, "bitrix24", "raw", entity)


class ExtractConfig(dg.Config):
    force_sweep: bool = False   # the deletion sweep runs when due (daily); the nightly reconciliation forces it
    # A backfill window (the `backfill` job's partitions set it): ISO dates, the end exclusive, by `created`
    # or `modified`; cursors are left alone.
    backfill_start: str | None = None
    backfill_end: str | None = None
    backfill_by: str = "created"


def extract_assets(portal: str | None = None) -> dg.AssetsDefinition:
    """The portal's extract step (`portal` None: the deployment's only portal)."""

    @dg.multi_asset(
        name=op_name("bitrix24_raw", portal),
        specs=[dg.AssetSpec(raw_key(e.name, portal), group_name=op_name(RAW_GROUP, portal), kinds={"dlt", "duckdb"},
                            description=f"Bitrix24 {e.method} rows in raw.{e.name}") for e in ENTITIES],
        can_subset=True,
        pool=pool(portal),
    )
    def bitrix24_raw(context: dg.AssetExecutionContext, config: ExtractConfig, bitrix24: Bitrix24Resource,
                     warehouse: WarehouseResource) -> Iterator[dg.MaterializeResult]:
        entities = [k.path[-1] for k in context.selected_asset_keys]
        backfill = ({"start": config.backfill_start, "end": config.backfill_end, "by": config.backfill_by}
                    if config.backfill_start and config.backfill_end else None)
        info = run_as_asset(STEP["extract"], portal, warehouse, bitrix24, entities=entities, backfill=backfill,
                            sweep=True if config.force_sweep else None)
        trace = info.pipeline.last_trace
        rows = trace.last_normalize_info.row_counts if trace and trace.last_normalize_info else {}
        for entity in entities:
            yield dg.MaterializeResult(asset_key=raw_key(entity, portal), metadata={"rows_loaded": rows.get(entity, 0)})

    return bitrix24_raw


bitrix24_raw = extract_assets()
