"""The plans file: every malformed line is refused with its line number, and nothing is half-loaded."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from tests.handmade import handmade_warehouse
from warehouse.build import build
from warehouse.marts import build_marts
from warehouse.plans import Plan, PlansError, read_plans
from warehouse.settings import Settings

HEADER = "scope,id,month,metric,plan\n"


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "plans.csv"
    path.write_text(HEADER + body, encoding="utf-8")
    return path


def test_a_well_formed_file_gives_every_plan(tmp_path: Path) -> None:
    path = write(tmp_path, "# November\nmanager,7,2026-11,calls,400\n\n"
                           "department,3,2026-11,won_amount,\"5 000 000,50\"\n")
    assert read_plans(path, {7}, {3}) == [Plan("manager", 7, "2026-11-01", "calls", Decimal(400)),
                                          Plan("department", 3, "2026-11-01", "won_amount", Decimal("5000000.50"))]


@pytest.mark.parametrize(("body", "message"), [
    ("manager,7,2026-11,calls,400\nmanager,99,2026-11,calls,10\n", "line 3: no manager with ID 99 in the warehouse"),
    ("department,42,2026-11,calls,10\n", "line 2: no department with ID 42 in the warehouse"),
    ("team,7,2026-11,calls,10\n", "line 2: scope 'team' is neither manager nor department"),
    ("manager,7,2026-13,calls,10\n", "line 2: month '2026-13' is not YYYY-MM"),
    ("manager,7,November,calls,10\n", "line 2: month 'November' is not YYYY-MM"),
    ("manager,7,2031-01,calls,10\n", "line 2: month 2031-01 is outside the warehouse's calendar"),
    ("manager,7,2026-11,meetings,10\n", "line 2: unknown metric 'meetings'"),
    ("manager,7,2026-11,calls,10\nmanager,7,2026-11,calls,12\n", "line 3: duplicates line 2"),
    ("manager,7,2026-11,calls,-5\n", "line 2: plan '-5' must be a number of at least 0"),
    ("manager,7,2026-11,calls,many\n", "line 2: plan 'many' is not a number"),
    ("manager,7,2026-11,calls\n", "line 2: expected 5 values"),
])
def test_a_bad_line_is_refused_with_its_number(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(PlansError, match=message):
        read_plans(write(tmp_path, body), {7}, {3}, ("2025-01", "2027-12"))


def test_a_wrong_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plans.csv"
    path.write_text("manager;id;month\n", encoding="utf-8")
    with pytest.raises(PlansError, match="line 1: the header must be scope,id,month,metric,plan"):
        read_plans(path, {7}, {3})


def test_a_bad_plans_file_leaves_the_previous_marts_as_they_were(tmp_path: Path) -> None:
    warehouse = handmade_warehouse(tmp_path)
    good = write(tmp_path, "manager,7,2026-03,calls,10\n")
    build_marts(warehouse, settings=Settings(plans_file=good))
    with duckdb.connect(str(warehouse), read_only=True) as con:
        before = con.execute("SELECT count(*), sum(plan) FROM marts.plan_fact").fetchall()
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "manager,7,2026-03,emails,5\nmanager,7,2026-03,calls,-1\n", encoding="utf-8")
    with pytest.raises(PlansError, match="line 3"):
        build_marts(warehouse, settings=Settings(plans_file=bad))
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("SELECT count(*), sum(plan) FROM marts.plan_fact").fetchall() == before
        assert con.execute("SELECT count(*) FROM intermediate.plans").fetchone() == (1,)
    assert build(warehouse).mode == "incremental"
