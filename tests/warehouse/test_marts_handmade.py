"""The report marts on a hand-made portal (tests/handmade.py describes it): every edge case the rules
name, with answers worked out by hand."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.handmade import NOW_LOCAL, handmade_warehouse
from warehouse.build import WarehouseError
from warehouse.marts import build_marts
from warehouse.settings import Settings


def rows(warehouse: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("handmade")
    target = handmade_warehouse(folder)
    plans = folder / "plans.csv"
    plans.write_text("scope,id,month,metric,plan\n"
                     "manager,7,2026-03,calls,10\n"          # 3 calls so far
                     "manager,5,2026-03,new_deals,4\n"       # manager 5 has left the company
                     "department,3,2026-03,won_deals,6\n", encoding="utf-8")
    build_marts(target, as_of=NOW_LOCAL, settings=Settings(gap_min_deals=5, plans_file=plans))
    return target


def test_the_team_funnel_counts_skips_reopens_moves_and_leaves_out_deleted_deals(warehouse: Path) -> None:
    funnel = rows(warehouse, "SELECT pipeline_id, stage_id, deals_reached, conversion_from_previous, deals_lost, "
                             "amount_lost FROM marts.funnel_team ORDER BY pipeline_id, stage_order")
    assert [(p, s, n) for p, s, n, *_ in funnel] == [
        (0, "NEW", 8), (0, "PREPARATION", 7), (0, "PREPAYMENT_INVOICE", 4), (0, "EXECUTING", 3),
        (0, "FINAL_INVOICE", 3), (0, "WON", 3),
        (2, "C2:NEW", 1), (2, "C2:OFFER", 1), (2, "C2:INVOICE", 1), (2, "C2:WON", 1)]
    conversions = [c for p, _, _, c, _, _ in funnel if p == 0]
    assert conversions == [None, 7 / 8, 4 / 7, 3 / 4, 1.0, 1.0]
    lost = {s: (n, a) for p, s, _, _, n, a in funnel if n}
    assert lost == {"NEW": (2, Decimal("2000.00")), "PREPARATION": (1, Decimal("500.00"))}


def test_a_step_far_below_the_median_conversion_is_a_gap_annotated_with_its_reasons(warehouse: Path) -> None:
    gaps = rows(warehouse, "SELECT stage_id, gap_rule, gap_lost_reasons FROM marts.funnel_team WHERE is_gap")
    # Steps convert 7/8, 4/7, 3/4, 1, 1: median 0.875; 4/7 = 0.57 is below 0.75 x 0.875 = 0.66.
    assert gaps == [("PREPAYMENT_INVOICE", "below 0.75 x the median step (88%)", "Too expensive (1)")]


def test_each_managers_funnel_is_their_own(warehouse: Path) -> None:
    per_manager = rows(warehouse, "SELECT m.user_id, f.stage_id, f.deals_reached FROM marts.funnel AS f JOIN "
                                  "core.dim_manager AS m USING (manager_key) WHERE f.pipeline_id = 0 AND "
                                  "f.deals_reached > 0 ORDER BY m.user_id, f.stage_order")
    assert [(u, s, n) for u, s, n in per_manager if u == 8] == [(8, "NEW", 1)]
    assert sum(n for u, s, n in per_manager if s == "NEW") == 8


def test_lost_reasons_name_the_stage_lost_from(warehouse: Path) -> None:
    lost = rows(warehouse, "SELECT m.user_id, l.reason_stage_id, l.reason_field_value, l.lost_from_stage_id, "
                           "l.deals_lost, l.amount_lost, l.share_of_lost FROM marts.lost_reasons AS l "
                           "JOIN core.dim_manager AS m USING (manager_key) ORDER BY ALL")
    assert lost == [(7, "LOSE", "Too expensive", "PREPARATION", 1, Decimal("500.00"), 1 / 3),
                    (7, "LOSE", None, "NEW", 1, Decimal("1000.00"), 1 / 3),
                    (8, "APOLOGY", None, "NEW", 1, Decimal("1000.00"), 1 / 3)]


def test_forgotten_deals_are_open_deals_with_nothing_planned(warehouse: Path) -> None:
    forgotten = rows(warehouse, "SELECT deal_id, stage_id, has_overdue_activity, last_activity_at, "
                                "days_since_last_activity, days_in_stage, overdue_activities "
                                "FROM marts.deals_without_activities ORDER BY deal_id")
    # 7 has only a finished call as activities, but an open task bound to it from the Tasks module.
    assert [f[:3] for f in forgotten] == [(3, "PREPAYMENT_INVOICE", True)]
    (_, _, _, last3, since3, stage3, overdue3), = forgotten
    assert overdue3 == 2, "the overdue to-do once (it is an activity and a piece of work) and the open task"
    assert last3 == datetime(2026, 3, 15, 10)
    assert (since3, stage3) == (5, 10)      # to-do started 15 March 10:00; in its stage since 10 March 10:00
    assert rows(warehouse, "SELECT user_id, open_deals, forgotten_deals, forgotten_with_overdue FROM "
                           "marts.deals_without_activities_by_manager") == [(7, 2, 1, 1)]


def test_manager_activity_counts_each_kind_and_gives_idle_working_days_zeros(warehouse: Path) -> None:
    days = {str(d): counts for d, *counts in rows(warehouse, """
        SELECT period_start, calls_outgoing, calls_incoming, calls_missed, call_minutes, emails_outgoing,
               emails_incoming, meetings, tasks_created, tasks_closed, deals_created, deals_moved, deals_won,
               deals_lost
        FROM marts.manager_activity WHERE user_id = 7 AND period_grain = 'day'""")}
    assert days["2026-03-16"] == [1, 1, 1, 3.0, 1, 0, 0, 1, 0, 0, 0, 0, 0]
    assert days["2026-03-17"] == [0, 0, 0, 0.0, 0, 1, 1, 1, 0, 0, 0, 0, 0]
    assert days["2026-03-18"] == [0, 0, 0, 0.0, 0, 0, 0, 0, 1, 0, 0, 0, 0]
    # Created on Sunday 1 March (a day off, present because deals were created); deleted deal 5 left out.
    assert days["2026-03-01"][9] == 7
    moved = {d: c[10] for d, c in days.items() if c[10]}
    assert moved == {"2026-03-02": 4, "2026-03-03": 1, "2026-03-04": 2, "2026-03-10": 1}
    assert {d: c[11] for d, c in days.items() if c[11]} == {"2026-03-06": 1, "2026-03-05": 1, "2026-03-07": 1}
    assert {d: c[12] for d, c in days.items() if c[12]} == {"2026-03-05": 1, "2026-03-06": 1}
    idle = rows(warehouse, "SELECT count(*), sum(calls_outgoing + deals_created + deals_lost) FROM "
                           "marts.manager_activity WHERE user_id = 8 AND period_grain = 'day'")
    # Manager 8: 1 March (deal created, a Sunday) to 20 March: 15 working days from the 2nd, plus the 1st.
    assert idle == [(16, 2)]
    week = rows(warehouse, "SELECT calls_outgoing, emails_incoming, working_days FROM marts.manager_activity "
                           "WHERE user_id = 7 AND period_grain = 'week' AND period_start = DATE '2026-03-16'")
    assert week == [(1, 1, 5)]


def test_data_quality_rules_on_real_world_formats(warehouse: Path) -> None:
    found = rows(warehouse, "SELECT entity_type, entity_id, rule, details FROM marts.data_quality "
                            "WHERE entity_type <> 'deal' ORDER BY ALL")
    assert found == [
        ("company", 1, "empty_policy_field", "industry"),
        ("company", 1, "lowercase_name", "ооо ромашка"),
        ("company", 1, "no_phone_no_email", None),
        ("contact", 1, "duplicate", "phone 79123456789"),
        ("contact", 2, "duplicate", "phone 79123456789"),
        ("contact", 3, "empty_policy_field", "post"),
        ("contact", 3, "lowercase_name", "иван"),
        ("contact", 4, "lowercase_name", "smith"),
        ("contact", 5, "phone_in_comment", "8 912 3456781"),
        ("contact", 6, "no_phone_no_email", None),
        ("contact", 6, "phone_in_comment", "+44 20 7946 0958"),
        ("contact", 7, "bad_phone", "12-34"),
        ("contact", 7, "duplicate", "email a@x.ru"),
        ("contact", 8, "duplicate", "email a@x.ru"),
        ("contact", 12, "phone_in_comment", "+7 (912) 345-67-83"),
        ("contact", 13, "phone_in_comment", "89123456784"),
    ]
    deals = rows(warehouse, "SELECT entity_id FROM marts.data_quality WHERE rule = 'no_planned_activity' ORDER BY 1")
    assert deals == [(3,)], "7 has an open task from the Tasks module"
    summary = rows(warehouse, "SELECT entity_type, records_created, records_with_problems, problems, share_clean "
                              "FROM marts.data_quality_summary ORDER BY ALL")
    assert summary == [("company", 2, 1, 3, 0.5), ("contact", 12, 10, 13, 2 / 12)]


def test_plan_versus_fact_with_pace_over_working_days(warehouse: Path) -> None:
    plans = {(s, i, m): r for s, i, m, *r in rows(warehouse, """
        SELECT scope, scope_id, metric, is_active, plan, fact, pct_done, expected_by_today, forecast, working_days,
               working_days_elapsed
        FROM marts.plan_fact WHERE plan IS NOT NULL AND period_month = DATE '2026-03-01'""")}
    # March 2026 has 22 working days; by Friday 20 March, 15 have gone by, today included. Manager 7 has made
    # 3 calls (the completed ones on the 10th and 16th; missed, unfinished and deleted calls do not count).
    active, plan, fact, pct, expected, forecast, days, elapsed = plans[("manager", 7, "calls")]
    assert (active, plan, fact, days, elapsed) == (True, 10, 3, 22, 15)
    assert (pct, expected, forecast) == (pytest.approx(0.3), pytest.approx(10 * 15 / 22), pytest.approx(3 * 22 / 15))
    # Manager 5 left the company: the plan still shows, against nothing.
    assert plans[("manager", 5, "new_deals")][:4] == [False, 4, 0, 0]


def test_a_department_counts_its_managers_facts(warehouse: Path) -> None:
    store = sqlite3.connect(warehouse.parent / "portal.sqlite3")
    department_of_7 = int(store.execute("SELECT uf_department FROM users WHERE id = 7").fetchone()[0].strip("[]"))
    store.close()
    fact = rows(warehouse, "SELECT fact FROM marts.plan_fact WHERE scope = 'department' AND scope_id = 3 "
                           "AND period_month = DATE '2026-03-01' AND metric = 'won_deals'")
    # Deals 1, 4 and 8 were won in March by manager 7 (deal 7 was reopened); nobody else won any.
    assert fact == [(3 if department_of_7 == 3 else 0,)]
    by_department = rows(warehouse, "SELECT scope_id, fact FROM marts.plan_fact WHERE scope = 'department' "
                                    "AND period_month = DATE '2026-03-01' AND metric = 'won_deals' AND fact > 0")
    assert by_department == [(department_of_7, 3)]


def test_a_policy_field_the_portal_lacks_is_refused_by_name(warehouse: Path) -> None:
    with pytest.raises(WarehouseError, match=r"data_quality\.contact_required names 'passport'"):
        build_marts(warehouse, as_of=NOW_LOCAL, settings=Settings(contact_required=("passport",)))
    assert rows(warehouse, "SELECT count(*) FROM marts.data_quality WHERE rule = 'empty_policy_field'") == [(2,)]


def test_the_daily_plan_spreads_the_month_over_working_days(warehouse: Path) -> None:
    days = {str(d): (w, p, f) for d, w, p, f in rows(warehouse, """
        SELECT day, is_working_day, plan, fact FROM marts.plan_fact_daily
        WHERE scope = 'manager' AND scope_id = 7 AND metric = 'calls'""")}
    assert len(days) == 31 and days["2026-03-16"] == (True, pytest.approx(10 / 22), 2)
    assert days["2026-03-10"][2] == 1 and days["2026-03-15"] == (False, 0, 0)
    assert sum(f for _, _, f in days.values()) == 3 and sum(p for _, p, _ in days.values()) == pytest.approx(10)


def test_an_intermediate_that_was_a_view_is_made_a_table_and_the_other_way(warehouse: Path, tmp_path: Path) -> None:
    """A warehouse built before an intermediate became a table (`Table` in its header), or before one became a
    view again, builds: DuckDB replaces a view with a view and a table with a table only."""
    copy = tmp_path / "warehouse.duckdb"
    copy.write_bytes(warehouse.read_bytes())
    with duckdb.connect(str(copy)) as con:
        funnel = con.execute("SELECT count(*) FROM intermediate.funnel_steps").fetchone()
        con.execute("DROP TABLE intermediate.funnel_steps")
        con.execute("CREATE VIEW intermediate.funnel_steps AS SELECT 1 AS stale")
        con.execute("DROP VIEW intermediate.work_items")
        con.execute("CREATE TABLE intermediate.work_items AS SELECT 1 AS stale")
    build_marts(copy, as_of=NOW_LOCAL, settings=Settings(gap_min_deals=5), full=True)
    kinds = dict(rows(copy, "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = "
                            "'intermediate' AND table_name IN ('funnel_steps', 'work_items')"))
    assert kinds == {"funnel_steps": "BASE TABLE", "work_items": "VIEW"}
    assert rows(copy, "SELECT count(*) FROM intermediate.funnel_steps") == [funnel]


def test_too_little_memory_stops_the_build_in_one_line_and_changes_nothing(warehouse: Path, tmp_path: Path) -> None:
    """`[warehouse] memory_limit` reaches DuckDB: a limit too small for the build says so and what to do."""
    copy = tmp_path / "warehouse.duckdb"
    copy.write_bytes(warehouse.read_bytes())
    before = rows(copy, "SELECT count(*), sum(hash(f)) FROM marts.funnel AS f")
    with pytest.raises(WarehouseError) as failed:
        build_marts(copy, as_of=NOW_LOCAL, settings=Settings(gap_min_deals=5, memory_limit="1MB"), full=True)
    message = str(failed.value)
    assert "\n" not in message and "ran out of memory within memory_limit = '1MB'" in message
    assert "[warehouse] in b24wh.toml" in message
    assert rows(copy, "SELECT count(*), sum(hash(f)) FROM marts.funnel AS f") == before
    build_marts(copy, as_of=NOW_LOCAL, settings=Settings(gap_min_deals=5, memory_limit="64MB"), full=True)
    assert rows(copy, "SELECT count(*), sum(hash(f)) FROM marts.funnel AS f") == before
