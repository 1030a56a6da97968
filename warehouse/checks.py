"""Checks on the warehouse's tables: each counts the rows that break one rule (0 means it holds).

Core checks guard the marts: unique keys, keys that resolve to their dimensions, no negative durations,
counts that agree with raw. Mart checks guard what is published: a funnel never grows along its steps,
shares add up, one row per grain. Dagster runs them as blocking asset checks; `b24wh refresh` runs
them between the core build and the marts.

After an incremental core build, the uniqueness of a table patched by key is checked among the rows of the
records patched since the last marts build (`meta.mart_changes`), which is where a patch can have made a
duplicate: the other rows are those an earlier build wrote and its checks passed (a failed check stops the
marts build, so its records stay in `meta.mart_changes` and are checked again). At a million deals that is
0.1 s rather than the 1.5 s of counting ten million activity ids. After a full build every row is checked.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from warehouse.build import WarehouseError, handed_over_in_full
from warehouse.catalogue import CHANGE_SETS, KEYED_CORE, PRIMARY_KEYS


@dataclass(frozen=True)
class Check:
    table: str          # schema.table
    name: str
    description: str
    violations: str     # SQL counting the rows that break the rule
    patched: str | None = None   # the same among the rows patched since the last marts build (see above)


# Per core table patched by key: the condition on its rows of the records patched since the last marts build.
_PATCHED = {m.relation: f"{CHANGE_SETS[m.changes or '']} IN (SELECT key FROM meta.mart_changes WHERE change_set = "
                        f"'{m.changes}')" for m in KEYED_CORE}


def _unique(schema: str) -> tuple[Check, ...]:
    """A uniqueness check per key of the schema's tables in PRIMARY_KEYS."""
    checks = []
    for table, key in PRIMARY_KEYS.items():
        if table.startswith(f"{schema}."):
            columns = key[0] if len(key) == 1 else f"({', '.join(key)})"
            count = f"SELECT count(*) - count(DISTINCT {columns}) FROM {table}"
            patched = (f"{count} WHERE {columns} IN (SELECT {columns} FROM {table} WHERE {_PATCHED[table]})"
                       if table in _PATCHED else None)
            checks.append(Check(table, f"{key[0]}_unique" if len(key) == 1 else "grain_unique",
                                f"{', '.join(key)} identifies one row", count, patched))
    return tuple(checks)


CORE_CHECKS: tuple[Check, ...] = (
    *_unique("core"),
    *(Check(f"core.{f}", f"{k}_resolves", f"every {k} is in {d}",
            f"SELECT count(*) FROM core.{f} AS f WHERE f.{k} IS NOT NULL AND f.{k} NOT IN (SELECT {k} FROM core.{d})")
      for f, k, d in (("fact_deal", "stage_key", "dim_stage"), ("fact_deal", "manager_key", "dim_manager"),
                      ("fact_deal_stage", "stage_key", "dim_stage"), ("fact_deal_stage", "manager_key", "dim_manager"),
                      ("fact_deal_stage", "date_key", "dim_date"), ("fact_activity", "manager_key", "dim_manager"),
                      ("fact_activity", "date_key", "dim_date"), ("fact_invoice", "manager_key", "dim_manager"),
                      ("fact_call", "manager_key", "dim_manager"), ("fact_call", "date_key", "dim_date"),
                      ("fact_task", "manager_key", "dim_manager"), ("fact_task", "date_key", "dim_date"),
                      ("dim_deal", "source_key", "dim_source"), ("fact_pipeline_daily", "stage_key", "dim_stage"),
                      ("fact_pipeline_daily", "date_key", "dim_date"))),
    Check("core.fact_deal", "managers_known", "every live deal has a known responsible manager",
          "SELECT count(*) FROM core.fact_deal WHERE manager_key = -1 AND NOT is_deleted"),
    Check("core.fact_deal_stage", "no_negative_durations", "no stage visit lasts less than nothing",
          "SELECT count(*) FROM core.fact_deal_stage WHERE hours_in_stage < 0"),
    Check("core.fact_deal", "no_negative_lags", "no deal closes before it was created",
          "SELECT count(*) FROM core.fact_deal WHERE days_to_close < 0"),
    Check("core.fact_deal", "rows_match_raw", "one row per deal in raw",
          "SELECT abs((SELECT count(*) FROM core.fact_deal) - (SELECT count(DISTINCT id) FROM raw.deals))"),
    Check("core.fact_activity", "rows_match_raw", "one row per live activity in raw",
          "SELECT abs((SELECT count(*) FROM core.fact_activity) - (SELECT count(*) FROM staging.activities))"),
)


MART_CHECKS: tuple[Check, ...] = (
    *_unique("marts"),
    *(Check(f"marts.{t}", "never_grows_along_the_funnel", "no step reaches more deals than the step before it",
            f"SELECT count(*) FROM (SELECT deals_reached > lag(deals_reached) OVER (PARTITION BY {g} ORDER BY "
            f"stage_order) AS grows FROM marts.{t}) WHERE grows")
      for t, g in (("funnel", "pipeline_id, cohort_month, manager_key"), ("funnel_team", "pipeline_id, cohort_month"))),
    Check("marts.lost_reasons", "shares_add_up", "lost-reason shares add up to 1 in each pipeline and month",
          "SELECT count(*) FROM (SELECT sum(share_of_lost) AS total FROM marts.lost_reasons "
          "GROUP BY pipeline_id, cohort_month) WHERE abs(total - 1) > 1e-9"),
    Check("marts.deals_without_activities", "only_open_deals", "every row is an open deal",
          "SELECT count(*) FROM marts.deals_without_activities AS d JOIN core.fact_deal AS f USING (deal_id) "
          "WHERE f.status <> 'open'"),
    Check("marts.data_quality_summary", "problems_within_records", "no more records with problems than records",
          "SELECT count(*) FROM marts.data_quality_summary WHERE records_with_problems > records_created"),
    Check("marts.user_history", "described", "every event says what happened",
          "SELECT count(*) FROM marts.user_history WHERE description IS NULL OR event_at IS NULL"),
)


def violations(con: duckdb.DuckDBPyConnection, check: Check, *, patched_only: bool = False) -> int:
    """The rows that break the check: among the patched records' rows where `patched_only` and it can."""
    sql = check.patched if patched_only and check.patched else check.violations
    return int(con.execute(sql).fetchone()[0])  # type: ignore[index]


def count(warehouse: str, checks: tuple[Check, ...]) -> dict[Check, int]:
    """Each check's violations in the warehouse (none read when there are no checks)."""
    if not checks:
        return {}
    with duckdb.connect(warehouse) as con:     # as the refresh holds it (files.kept_open): read-write
        patched = handed_over_in_full(con) is False   # only incremental core builds since the last marts build
        return {check: violations(con, check, patched_only=patched) for check in checks}


def require(counted: dict[Check, int], consequence: str) -> None:
    """Raises WarehouseError naming the first failing check (and how many more failed), if any fails."""
    failed = [f"{c.table}.{c.name}: {n} rows break it ({c.description})" for c, n in counted.items() if n]
    if failed:
        raise WarehouseError(f"{consequence}: {failed[0]}" + (f" (and {len(failed) - 1} more)"
                                                             if len(failed) > 1 else ""))
