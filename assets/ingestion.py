"""One asset per entity of the Bitrix24 source (keys `bitrix24/raw/<entity>`), loaded by one dlt run.

The source is built per run (a subset of entities when only some assets are selected); the load is
`pipelines.bitrix24.pipeline.load`, which finishes anything a killed run left behind first.
"""
# No `from __future__ import annotations` here: Dagster reads parameter annotations (configs, resources).


from collections.abc import Iterator

import dagster as dg

from assets.failures import in_one_line
from dagster_project.resources import WRITER_POOL, Bitrix24Resource, WarehouseResource
from pipelines.bitrix24.catalogue import ENTITIES
from pipelines.bitrix24.pipeline import load
from warehouse.files import check_warehouse
from warehouse.publish import check_publish_url
from warehouse.settings import check_plans_file

RAW_GROUP = "bitrix24_raw"


def raw_key(entity: str) -> dg.AssetKey:
    return dg.AssetKey(["bitrix24", "raw", entity])


class ExtractConfig(dg.Config):
    force_sweep: bool = False   # the deletion sweep runs when due (daily); the nightly reconciliation forces it


@dg.multi_asset(
    name="bitrix24_raw",
    specs=[dg.AssetSpec(raw_key(e.name), group_name=RAW_GROUP, kinds={"dlt", "duckdb"},
                        description=f"Bitrix24 {e.method} rows in raw.{e.name}") for e in ENTITIES],
    can_subset=True,
    pool=WRITER_POOL,
)
def bitrix24_raw(context: dg.AssetExecutionContext, config: ExtractConfig, bitrix24: Bitrix24Resource,
                 warehouse: WarehouseResource) -> Iterator[dg.MaterializeResult]:
    entities = [key.path[-1] for key in context.selected_asset_keys]
    with in_one_line(warehouse.file):
        # Before any request, as the command line checks them: the settings and the warehouse file.
        check_plans_file(warehouse.settings())
        check_publish_url()
        check_warehouse(warehouse.file)
        info = load(warehouse.file, entities=entities, sweep=True if config.force_sweep else None,
                    webhook_url=bitrix24.webhook_url, plan=bitrix24.plan, timezone=warehouse.portal_timezone,
                    progress="log")
    trace = info.pipeline.last_trace   # type: ignore[attr-defined]
    rows = trace.last_normalize_info.row_counts if trace and trace.last_normalize_info else {}
    for entity in entities:
        yield dg.MaterializeResult(asset_key=raw_key(entity), metadata={"rows_loaded": rows.get(entity, 0)})
