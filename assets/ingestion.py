"""The extract step's assets: one per entity of the Bitrix24 source (keys `bitrix24/raw/<entity>`, after the
portal's name for a listed portal), loaded by one dlt run (a subset of entities when only some are selected)."""
# No `from __future__ import annotations` here: Dagster reads annotations in the asset modules.

from collections.abc import Iterator
from typing import TYPE_CHECKING

import dagster as dg

from assets.steps import key, op_name
from pipelines.bitrix24.catalogue import ENTITIES

if TYPE_CHECKING:
    from dlt.common.pipeline import LoadInfo

RAW_GROUP = "bitrix24_raw"


def raw_key(entity: str, portal: str | None = None) -> dg.AssetKey:
    return key(portal, "bitrix24", "raw", entity)


def raw_table_key(table: str, portal: str | None = None) -> dg.AssetKey:
    """The asset a raw table (`raw.contacts`) belongs to: its entity's, a child table's (`raw.contacts__phone`)
    its parent's."""
    entity = table.removeprefix("raw.").split("__", 1)[0]
    if entity not in {e.name for e in ENTITIES}:
        raise ValueError(f"{table} is not the table of an entity the extract loads")
    return raw_key(entity, portal)


def raw_specs(portal: str | None) -> list[dg.AssetSpec]:
    return [dg.AssetSpec(raw_key(e.name, portal), group_name=op_name(RAW_GROUP, portal), kinds={"dlt", "duckdb"},
                         description=f"Bitrix24 {e.method} rows in raw.{e.name}") for e in ENTITIES]


def selected_entities(context: dg.AssetExecutionContext, portal: str | None) -> list[str]:
    return [e.name for e in ENTITIES if raw_key(e.name, portal) in context.selected_asset_keys]


def raw_results(context: dg.AssetExecutionContext, info: "LoadInfo", portal: str | None
                ) -> Iterator[dg.MaterializeResult]:
    trace = info.pipeline.last_trace
    rows = trace.last_normalize_info.row_counts if trace and trace.last_normalize_info else {}
    for entity in selected_entities(context, portal):
        yield dg.MaterializeResult(asset_key=raw_key(entity, portal), metadata={"rows_loaded": rows.get(entity, 0)})
