"""The plans file: every malformed line is refused with its line number, and nothing is half-loaded."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from tests.handmade import handmade_warehouse
from warehouse.build import build
from warehouse.marts import build_marts
from warehouse.plans import Plan, PlansError, read_plans, suggest_plans, write_plans
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


def test_suggested_plans_are_110_percent_of_each_managers_three_months_before(tmp_path: Path) -> None:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA marts; CREATE SCHEMA intermediate")
    con.execute("CREATE TABLE intermediate.settings AS SELECT TIMESTAMP '2026-05-10 12:00' AS as_of")
    con.execute("CREATE TABLE marts.plan_fact (scope VARCHAR, scope_id BIGINT, period_month DATE, metric VARCHAR, "
                "fact DECIMAL(18, 2))")
    facts = [  # manager 7: calls 30, 60, 90 in Jan-Mar, then 100 in April; won amounts; manager 8 starts in March
        ("manager", 7, "2026-01-01", "calls", 30), ("manager", 7, "2026-02-01", "calls", 60),
        ("manager", 7, "2026-03-01", "calls", 90), ("manager", 7, "2026-04-01", "calls", 100),
        ("manager", 7, "2026-05-01", "calls", 5),
        ("manager", 7, "2026-02-01", "won_amount", 1_000_000), ("manager", 7, "2026-03-01", "won_amount", 500_000),
        ("manager", 8, "2026-03-01", "calls", 10),
        ("department", 3, "2026-03-01", "calls", 100),     # departments get no suggested plan
        ("manager", 7, "2026-06-01", "calls", 1),          # after the marts' moment: not planned
    ]
    con.executemany("INSERT INTO marts.plan_fact VALUES (?, ?, ?, ?, ?)", facts)
    plans = suggest_plans(con)
    assert plans == [
        # calls: April 1.1 x (30 + 60 + 90) / 3 = 66; May 1.1 x (60 + 90 + 100) / 3 = 91.67 -> 92
        # won amount: 1.1 x 1,500,000 / 3 = 550,000 in April and in May (amounts to the thousand)
        Plan("manager", 7, "2026-04-01", "calls", Decimal(66)),
        Plan("manager", 7, "2026-04-01", "won_amount", Decimal(550_000)),
        Plan("manager", 7, "2026-05-01", "calls", Decimal(92)),
        Plan("manager", 7, "2026-05-01", "won_amount", Decimal(550_000)),
        # manager 8: 1.1 x 10 / 3 = 3.67 -> 4 in April and in May
        Plan("manager", 8, "2026-04-01", "calls", Decimal(4)),
        Plan("manager", 8, "2026-05-01", "calls", Decimal(4)),
    ]
    path = tmp_path / "plans.csv"
    write_plans(path, plans, "suggested")
    assert read_plans(path, {7, 8}, set()) == plans, "the written file reads back as the same plans"
