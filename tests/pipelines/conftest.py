"""Fixtures for extraction tests: a portal per module, a warehouse per test, helpers to read raw tables."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from b24wh_simulator.client import SimulatorProcess
from tests.conftest import portal_options

# Raw tables whose rows must equal the portal's, and the truth key counting them.
TRUTH_TABLES = {"deals": "deals", "leads": "leads", "contacts": "contacts", "companies": "companies",
                "activities": "activities", "deal_stage_history": "deal_stage_history",
                "lead_status_history": "lead_status_history", "invoice_stage_history": "invoice_stage_history",
                "invoices": "invoices", "calls": "calls", "users": "users", "departments": "departments",
                "pipelines": "pipelines", "tasks": "tasks"}


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorProcess]:
    with SimulatorProcess(**portal_options(deals=400, seed=17)) as process:
        yield process


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    return tmp_path / "data" / "warehouse.duckdb"


def query(warehouse: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def counts(warehouse: Path) -> dict[str, int]:
    """Live rows per raw table (versioned tables: latest versions; deletions applied)."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                            "WHERE table_schema = 'raw'").fetchall()}
        deleted = "deletions" in tables
        result = {}
        for table in TRUTH_TABLES:
            where = []
            columns = {r[0] for r in con.execute(f"DESCRIBE raw.{table}").fetchall()}
            if "version_hash" in columns:   # the latest version of each record, unless it vanished
                where.append(f"(id, valid_from) IN (SELECT id, max(valid_from) FROM raw.{table} GROUP BY id) "
                             "AND NOT is_deleted")
            if deleted:
                where.append(f"id NOT IN (SELECT id FROM raw.deletions WHERE entity = '{table}' AND is_deleted)")
            clause = f" WHERE {' AND '.join(where)}" if where else ""
            result[table] = con.execute(f"SELECT count(*) FROM raw.{table}{clause}").fetchone()[0]
        return result


def duplicates(warehouse: Path) -> dict[str, int]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {table: con.execute(f"SELECT count(*) - count(DISTINCT id) FROM raw.{table}").fetchone()[0]
                for table in TRUTH_TABLES if table not in ("users", "departments", "pipelines")}


def snapshot(warehouse: Path, table: str) -> list[tuple[Any, ...]]:
    """A table's content without dlt's bookkeeping columns, in id order."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        columns = [r[0] for r in con.execute(f"DESCRIBE raw.{table}").fetchall() if not r[0].startswith("_dlt")]
        return con.execute(f"SELECT {', '.join(columns)} FROM raw.{table} ORDER BY id").fetchall()
