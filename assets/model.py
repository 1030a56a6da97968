"""The core star schema as assets (`warehouse/core/<table>`), built in one transaction, with blocking
checks on every core table: unique keys, keys that resolve, no negative durations, counts that agree
with raw. A failing check stops everything downstream of the table (the marts)."""
# No `from __future__ import annotations` here: Dagster reads parameter annotations (configs, resources).


from collections.abc import Iterator
from dataclasses import dataclass

import dagster as dg
import duckdb

from assets.ingestion import raw_key
from dagster_project.resources import WRITER_POOL, WarehouseResource
from warehouse.build import MODELS, build

CORE_GROUP = "warehouse_core"
RAW_INPUTS = ("deals", "deal_stage_history", "activities", "users", "departments", "statuses", "pipelines",
              "contacts", "companies", "invoices", "invoice_stage_history", "calls")


def core_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["warehouse", "core", table])


@dataclass(frozen=True)
class Check:
    table: str
    name: str
    description: str
    violations: str    # SQL counting the rows that break the rule


CHECKS: tuple[Check, ...] = (
    *(Check(t, f"{k}_unique", f"{k} identifies one row", f"SELECT count(*) - count(DISTINCT {k}) FROM core.{t}")
      for t, k in (("dim_date", "date_key"), ("dim_manager", "manager_key"), ("dim_stage", "stage_key"),
                   ("dim_source", "source_key"), ("dim_deal", "deal_id"), ("dim_contact", "contact_id"),
                   ("dim_company", "company_id"), ("fact_deal", "deal_id"), ("fact_deal_stage", "history_id"),
                   ("fact_activity", "activity_id"), ("fact_invoice", "invoice_id"), ("fact_call", "call_id"))),
    *(Check(f, f"{k}_resolves", f"every {k} is in {d}",
            f"SELECT count(*) FROM core.{f} AS f WHERE f.{k} IS NOT NULL AND f.{k} NOT IN (SELECT {k} FROM core.{d})")
      for f, k, d in (("fact_deal", "stage_key", "dim_stage"), ("fact_deal", "manager_key", "dim_manager"),
                      ("fact_deal_stage", "stage_key", "dim_stage"), ("fact_deal_stage", "manager_key", "dim_manager"),
                      ("fact_deal_stage", "date_key", "dim_date"), ("fact_activity", "manager_key", "dim_manager"),
                      ("fact_activity", "date_key", "dim_date"), ("fact_invoice", "manager_key", "dim_manager"),
                      ("fact_call", "manager_key", "dim_manager"), ("fact_call", "date_key", "dim_date"),
                      ("dim_deal", "source_key", "dim_source"), ("fact_pipeline_daily", "stage_key", "dim_stage"),
                      ("fact_pipeline_daily", "date_key", "dim_date"))),
    Check("fact_deal", "managers_known", "every live deal has a known responsible manager",
          "SELECT count(*) FROM core.fact_deal WHERE manager_key = -1 AND NOT is_deleted"),
    Check("fact_deal_stage", "no_negative_durations", "no stage visit lasts less than nothing",
          "SELECT count(*) FROM core.fact_deal_stage WHERE hours_in_stage < 0"),
    Check("fact_deal", "no_negative_lags", "no deal closes before it was created",
          "SELECT count(*) FROM core.fact_deal WHERE days_to_close < 0"),
    Check("fact_deal", "rows_match_raw", "one row per deal in raw",
          "SELECT abs((SELECT count(*) FROM core.fact_deal) - (SELECT count(DISTINCT id) FROM raw.deals))"),
    Check("fact_activity", "rows_match_raw", "one row per live activity in raw",
          "SELECT abs((SELECT count(*) FROM core.fact_activity) - (SELECT count(*) FROM staging.activities))"),
)


class ModelConfig(dg.Config):
    rebuild: bool = False   # rebuild every table in full instead of only what the latest loads touched


@dg.multi_asset(
    name="warehouse_core",
    specs=[dg.AssetSpec(core_key(m.name), group_name=CORE_GROUP, kinds={"duckdb"},
                        deps=[raw_key(e) for e in RAW_INPUTS],
                        description=f"core.{m.name} (warehouse/models/core/{m.name}.sql)")
           for m in MODELS if m.layer == "core"],
    check_specs=[dg.AssetCheckSpec(c.name, asset=core_key(c.table), description=c.description, blocking=True)
                 for c in CHECKS],
    pool=WRITER_POOL,
)
def warehouse_core(context: dg.AssetExecutionContext, config: ModelConfig,
                   warehouse: WarehouseResource) -> Iterator[object]:
    built = build(warehouse.file, timezone=warehouse.timezone, full=config.rebuild)
    context.log.info("%s model build in %.1f s: %s", built.mode, built.seconds, built.reason)
    for table, rows in built.counts.items():
        yield dg.MaterializeResult(asset_key=core_key(table), metadata={
            "dagster/row_count": rows, "build_mode": built.mode, "build_seconds": round(built.seconds, 2)})
    with duckdb.connect(str(warehouse.file), read_only=True) as con:
        for check in CHECKS:
            bad = int(con.execute(check.violations).fetchone()[0])  # type: ignore[index]
            yield dg.AssetCheckResult(asset_key=core_key(check.table), check_name=check.name, passed=bad == 0,
                                      metadata={"violations": bad})
