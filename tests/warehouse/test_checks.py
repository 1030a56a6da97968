"""The checks' counts on hand-made tables: after an incremental core build a patched table's uniqueness is
counted among the rows of the records patched since the last marts build; after a full build, or with nothing
on record, among every row (warehouse/checks.py)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from warehouse.checks import CORE_CHECKS, Check, count


def check(table: str, name: str) -> Check:
    return next(c for c in CORE_CHECKS if c.table == table and c.name == name)


ACTIVITY_IDS = check("core.fact_activity", "activity_id_unique")
HISTORY_IDS = check("core.fact_deal_stage", "history_id_unique")


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    """Activity 2 twice, written by an earlier build; activity 3 twice, patched since the last marts build. Deal 7's
    patched visit 12 has the id of deal 8's visit, which no build since touched; deal 9's visits are patched and
    unique."""
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA core")
        con.execute("CREATE SCHEMA meta")
        con.execute("CREATE TABLE core.fact_activity AS SELECT * FROM "
                    "(VALUES (1), (2), (2), (3), (3)) AS t(activity_id)")
        con.execute("CREATE TABLE core.fact_deal_stage AS SELECT * FROM "
                    "(VALUES (11, 7), (12, 7), (12, 8), (13, 9), (14, 9)) AS t(history_id, deal_id)")
        con.execute("CREATE TABLE meta.mart_changes (change_set VARCHAR, key BIGINT)")
        con.execute("INSERT INTO meta.mart_changes VALUES ('activities', 3), ('deals', 7), ('deals', 9)")
    return path


def test_after_an_incremental_build_the_patched_records_rows_are_counted(warehouse: Path) -> None:
    assert count(str(warehouse), (ACTIVITY_IDS, HISTORY_IDS)) == {ACTIVITY_IDS: 1, HISTORY_IDS: 1}, \
        "activity 3's copy, and deal 7's visit 12 beside deal 8's: not activity 2, which no patch wrote"


def test_after_a_full_build_every_row_is_counted(warehouse: Path) -> None:
    with duckdb.connect(str(warehouse)) as con:
        con.execute("INSERT INTO meta.mart_changes VALUES ('*', NULL)")
    assert count(str(warehouse), (ACTIVITY_IDS, HISTORY_IDS)) == {ACTIVITY_IDS: 2, HISTORY_IDS: 1}


def test_with_nothing_handed_over_every_row_is_counted(warehouse: Path) -> None:
    with duckdb.connect(str(warehouse)) as con:
        con.execute("DROP TABLE meta.mart_changes")
    assert count(str(warehouse), (ACTIVITY_IDS,)) == {ACTIVITY_IDS: 2}


def test_tables_rebuilt_every_time_have_no_patched_count() -> None:
    assert check("core.dim_manager", "manager_key_unique").patched is None
    assert all(c.patched is None for c in CORE_CHECKS if not c.name.endswith("_unique"))
