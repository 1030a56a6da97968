"""Builds the warehouse model: SQL files in dependency order, in one transaction.

Each model is one SQL file (`models/<layer>/<name>.sql`) holding a SELECT that states its grain first.
Staging models become views over the raw tables dlt loads; core models become tables. The whole
build is a single DuckDB transaction: a failing model leaves the previous warehouse exactly as it was.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

DEFAULT_TIMEZONE = "Europe/Moscow"
MODELS_DIR = Path(__file__).resolve().parent / "models"


class WarehouseError(RuntimeError):
    """A model could not be built; the warehouse is unchanged."""


@dataclass(frozen=True)
class Model:
    layer: str          # staging (view) | core (table)
    name: str

    @property
    def kind(self) -> str:
        return "VIEW" if self.layer == "staging" else "TABLE"

    def sql(self, timezone: str) -> str:
        text = (MODELS_DIR / self.layer / f"{self.name}.sql").read_text("utf-8")
        return text.replace("{portal_tz}", timezone)


# In dependency order.
MODELS: tuple[Model, ...] = (
    *(Model("staging", name) for name in (
        "deals", "deal_stage_history", "activities", "user_versions", "departments", "pipelines", "deal_stages",
        "contacts", "companies", "invoices", "invoice_stage_history", "calls", "directory")),
    *(Model("core", name) for name in (
        "dim_date", "dim_stage", "dim_manager", "dim_source", "dim_activity_type", "dim_deal", "dim_contact",
        "dim_company", "fact_deal_stage", "fact_deal", "fact_activity", "fact_invoice", "fact_call",
        "fact_pipeline_daily")),
)


def _deletions_sql(con: duckdb.DuckDBPyConnection) -> str:
    """The sweep's `raw.deletions` appears with the first deletion ever found; until then, none."""
    exists = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'raw' "
                         "AND table_name = 'deletions'").fetchone()
    if exists and exists[0]:
        return "SELECT entity, id, is_deleted FROM raw.deletions"
    return "SELECT CAST(NULL AS VARCHAR) AS entity, CAST(NULL AS BIGINT) AS id, false AS is_deleted WHERE false"


def _holidays_sql(holidays: Sequence[date]) -> str:
    if not holidays:
        return "SELECT CAST(NULL AS DATE) AS holiday WHERE false"
    values = ", ".join(f"(DATE '{d.isoformat()}')" for d in holidays)
    return f"SELECT holiday FROM (VALUES {values}) AS t(holiday)"


def build(warehouse: Path, *, timezone: str = DEFAULT_TIMEZONE, holidays: Sequence[date] = ()) -> dict[str, int]:
    """Builds every model; returns the row count of each core table."""
    if timezone not in zoneinfo.available_timezones():
        raise WarehouseError(f"unknown portal time zone {timezone!r}: use an IANA name such as Europe/Moscow")
    con = duckdb.connect(str(warehouse))
    try:
        con.execute("SET memory_limit = '512MB'")
        con.execute("SET threads = 2")
        con.execute("BEGIN TRANSACTION")
        for schema in ("staging", "core"):
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        con.execute(f"CREATE OR REPLACE VIEW staging.deletions AS {_deletions_sql(con)}")
        con.execute(f"CREATE OR REPLACE VIEW staging.holidays AS {_holidays_sql(holidays)}")
        for model in MODELS:
            try:
                con.execute(f"CREATE OR REPLACE {model.kind} {model.layer}.{model.name} AS {model.sql(timezone)}")
            except duckdb.Error as exc:
                raise WarehouseError(f"model {model.layer}.{model.name} failed: {exc}".splitlines()[0]) from exc
        counts = {m.name: int(con.execute(f"SELECT count(*) FROM core.{m.name}").fetchone()[0])  # type: ignore[index]
                  for m in MODELS if m.layer == "core"}
        con.execute("COMMIT")
        return counts
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.close()
