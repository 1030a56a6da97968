"""Builds the report marts (`models/marts`) on the core tables, in one transaction of their own.

The marts run after the core tables pass their checks (a failing blocking check leaves the previous
marts in place). They are small next to the facts and depend on the present moment (forgotten deals,
pace to plan), so each build recreates all of them. The settings they read (`warehouse.settings`) are
given to SQL as `intermediate.settings` (one row) and a few generated views; every mart and column carries
the description from its SQL file's header as a DuckDB comment, which BI tools show.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb

from warehouse.build import WarehouseError, comment, execute, transaction
from warehouse.catalogue import MART_TABLES, MARTS, macros
from warehouse.plans import load_plans
from warehouse.settings import Settings, portal_timezone

# The raw tables the views generated here read (lost reasons' field labels, contact points, policy gaps).
RAW_READS = ("deals", "userfields", "contacts", "companies")


@dataclass(frozen=True)
class MartsBuilt:
    counts: dict[str, int]    # rows per mart
    as_of: datetime           # the portal-local moment the marts describe
    seconds: float


def build_marts(warehouse: Path | str, *, timezone: str | None = None, settings: Settings | None = None,
                as_of: datetime | None = None) -> MartsBuilt:
    """Recreates every mart as of `as_of` (portal-local wall time; default now)."""
    timezone = portal_timezone(timezone)
    settings = settings or Settings()
    moment = as_of or datetime.now(ZoneInfo(timezone)).replace(tzinfo=None)
    started = time.perf_counter()
    with transaction(warehouse) as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS intermediate")
        con.execute("CREATE SCHEMA IF NOT EXISTS marts")
        con.execute(f"CREATE OR REPLACE VIEW intermediate.settings AS {_settings_sql(settings, moment)}")
        con.execute(f"CREATE OR REPLACE VIEW intermediate.deal_lost_reasons AS {_lost_reasons_sql(con, settings)}")
        con.execute(f"CREATE OR REPLACE VIEW intermediate.contact_points AS {_contact_points_sql(con)}")
        con.execute(f"CREATE OR REPLACE VIEW intermediate.policy_gaps AS {_policy_gaps_sql(con, settings)}")
        for statement in macros():    # as the model build made them (a warehouse built before a macro existed)
            con.execute(statement)
        load_plans(con, settings.plans_file)
        for model in MARTS:
            kind = "VIEW" if model.layer == "intermediate" else "TABLE"
            execute(con, model, f"CREATE OR REPLACE {kind} {model.relation} AS {model.sql(timezone)}")
            if model.layer == "marts":
                comment(con, model)
        counts = {name: int(con.execute(f"SELECT count(*) FROM marts.{name}").fetchone()[0])  # type: ignore[index]
                  for name in MART_TABLES}
        con.execute("CREATE TABLE IF NOT EXISTS meta.mart_builds (finished_at TIMESTAMPTZ, as_of TIMESTAMP)")
        con.execute("INSERT INTO meta.mart_builds VALUES (now(), ?)", [moment])
    return MartsBuilt(counts, moment, time.perf_counter() - started)


def _settings_sql(settings: Settings, as_of: datetime) -> str:
    return (f"SELECT TIMESTAMP '{as_of.isoformat(sep=' ')}' AS as_of, "
            f"{settings.gap_min_deals} AS gap_min_deals, {settings.gap_absolute} AS gap_absolute, "
            f"{settings.gap_below_median} AS gap_below_median, {settings.gap_drop} AS gap_drop, "
            f"{settings.top_reasons} AS top_reasons")


def _columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> dict[str, str]:
    return dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                            "WHERE table_schema = ? AND table_name = ?", [schema, table]).fetchall())


def _lost_reasons_sql(con: duckdb.DuckDBPyConnection, settings: Settings) -> str:
    """Lost deals and their reason: the loss-reason field's value (an enumeration's label) where the portal
    has the field and the deal a value, else the failure stage's name."""
    field = (settings.lost_reason_field or "").lower()
    has_field = bool(field) and field in _columns(con, "raw", "deals")
    has_lists = bool(_columns(con, "raw", "userfields__list"))
    if not has_field:
        value = "CAST(NULL AS VARCHAR)"
    elif has_lists:
        value = (f"coalesce((SELECT any_value(l.value) FROM raw.userfields AS u JOIN raw.userfields__list AS l "
                 f"ON l._dlt_parent_id = u._dlt_id WHERE u.entity_id = 'CRM_DEAL' AND lower(u.field_name) = "
                 f"'{field}' AND l.id = CAST(d.{field} AS VARCHAR)), nullif(CAST(d.{field} AS VARCHAR), ''))")
    else:
        value = f"nullif(CAST(d.{field} AS VARCHAR), '')"
    raw_join = "JOIN raw.deals AS d ON d.id = f.deal_id" if has_field else ""
    return (f"SELECT f.deal_id, {value} AS field_value, coalesce({value}, s.stage_name) AS reason "
            f"FROM core.fact_deal AS f JOIN core.dim_stage AS s USING (stage_key) {raw_join} "
            "WHERE f.status = 'lost' AND NOT f.is_deleted")


def _contact_points_sql(con: duckdb.DuckDBPyConnection) -> str:
    """Phones and e-mails of contacts and companies, from dlt's child tables (absent until one is loaded)."""
    parts = [f"SELECT '{kind}' AS entity_type, r.id AS entity_id, upper(c.type_id) AS kind, c.value "
             f"FROM raw.{table}__{point} AS c JOIN raw.{table} AS r ON c._dlt_parent_id = r._dlt_id"
             for kind, table in (("contact", "contacts"), ("company", "companies")) for point in ("phone", "email")
             if _columns(con, "raw", f"{table}__{point}")]
    return " UNION ALL ".join(parts) or ("SELECT CAST(NULL AS VARCHAR) AS entity_type, CAST(NULL AS BIGINT) AS "
                                         "entity_id, CAST(NULL AS VARCHAR) AS kind, CAST(NULL AS VARCHAR) AS value "
                                         "WHERE false")


def _policy_gaps_sql(con: duckdb.DuckDBPyConnection, settings: Settings) -> str:
    """Existing contacts and companies with fields the settings require left empty, and which fields."""
    parts = []
    for kind, table, required, key in (("contact", "contacts", settings.contact_required, "contact_required"),
                                       ("company", "companies", settings.company_required, "company_required")):
        present = _columns(con, "raw", table)
        for field in required:
            if field not in present:
                raise WarehouseError(f"settings data_quality.{key} names {field!r}, which raw.{table} does not "
                                     f"have; its fields: {', '.join(sorted(c for c in present if c[0] != '_'))}")
        if required:
            empty = ", ".join(f"CASE WHEN nullif(trim(CAST({f} AS VARCHAR)), '') IS NULL THEN '{f}' END"
                              for f in required)
            parts.append(f"SELECT '{kind}' AS entity_type, id AS entity_id, concat_ws(', ', {empty}) AS fields "
                         f"FROM raw.{table} WHERE id NOT IN (SELECT id FROM staging.deletions WHERE entity = "
                         f"'{table}' AND is_deleted)")
    union = " UNION ALL ".join(parts) or ("SELECT CAST(NULL AS VARCHAR) AS entity_type, CAST(NULL AS BIGINT) AS "
                                          "entity_id, '' AS fields")
    return f"SELECT * FROM ({union}) WHERE fields <> ''"
