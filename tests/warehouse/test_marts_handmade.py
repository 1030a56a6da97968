"""The report marts on a hand-made portal: every edge case the rules name, answers worked out by hand.

Deals (pipeline 0 unless named; created 1 March 2026; manager 7 unless named; 1,000 RUB unless named):
  1  NEW > PREPARATION > EXECUTING > WON                 skips a stage, won
  2  NEW > PREPARATION > NEW > LOSE                       backward move, then lost (from NEW)
  3  NEW > LOSE > PREPARATION > PREPAYMENT_INVOICE        lost, reopened, open now
  4  NEW > PREPARATION > C2:NEW > C2:OFFER > C2:WON        moved to pipeline 2, won there
  5  NEW > PREPARATION                                    deleted
  6  NEW > APOLOGY                                        lost at once, manager 8
  7  NEW > FINAL_INVOICE > WON > FINAL_INVOICE            won, then reopened
  8  NEW > WON                                            won straight away
  9  NEW > PREPARATION > LOSE                             lost from PREPARATION, 500 RUB, reason "Too expensive"

Contacts and companies, for the data-quality audit, are listed where they are written.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipelines.bitrix24.pipeline import load
from tests.handmade import NOW, NOW_LOCAL, HandPortal, activity, at, company, contact, deal, enum_id
from warehouse.build import build
from warehouse.marts import build_marts
from warehouse.settings import Settings


def rows(warehouse: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("handmade")
    portal = HandPortal(folder / "portal.sqlite3")
    db = portal.db
    deal(db, 1, [(1, "NEW"), (2, "PREPARATION"), (4, "EXECUTING"), (6, "WON")])
    deal(db, 2, [(1, "NEW"), (2, "PREPARATION"), (3, "NEW"), (5, "LOSE")])
    deal(db, 3, [(1, "NEW"), (2, "LOSE"), (9, "PREPARATION"), (10, "PREPAYMENT_INVOICE")])
    deal(db, 4, [(1, "NEW"), (2, "PREPARATION"), (3, "C2:NEW"), (4, "C2:OFFER"), (5, "C2:WON")])
    deal(db, 5, [(1, "NEW"), (2, "PREPARATION")], deleted=1)
    deal(db, 6, [(1, "NEW"), (2, "APOLOGY")], manager=8)
    deal(db, 7, [(1, "NEW"), (3, "FINAL_INVOICE"), (5, "WON"), (8, "FINAL_INVOICE")])
    deal(db, 8, [(1, "NEW"), (7, "WON")])
    deal(db, 9, [(1, "NEW"), (2, "PREPARATION"), (6, "LOSE")], amount=500.0,
         uf_crm_loss_reason=enum_id(db, "UF_CRM_LOSS_REASON", "PRICE"))
    # Forgotten deals: 3 has only an overdue to-do; 7 only finished work; 2 and 9 are closed.
    activity(db, 3, 6, 0, at(15), completed="N", deadline=at(15))
    activity(db, 7, 2, 2, at(10), duration=60)
    # Deal 1 (open work planned tomorrow keeps nothing forgotten: it is won anyway) and manager 7's week.
    activity(db, 1, 2, 2, at(16, 10), duration=120)                      # outgoing call, 2 min
    activity(db, 1, 2, 1, at(16, 11), duration=60)                       # incoming call, 1 min
    activity(db, 1, 2, 1, at(16, 12), completed="N")                     # missed: incoming, zero length
    activity(db, 1, 2, 2, at(16, 13), completed="N")                     # a planned call that did not happen
    activity(db, 1, 4, 2, at(16, 14))                                    # e-mail out
    activity(db, 1, 4, 1, at(17, 9))                                     # e-mail in
    activity(db, 1, 1, 0, at(17, 15), duration=3600)                     # meeting
    activity(db, 1, 3, 0, at(18), created=at(16, 9), updated=at(18, 16))   # task created 16th, closed 18th
    activity(db, 1, 6, 0, NOW + 86_400, completed="N", created=at(17, 10))  # to-do created 17th, still open
    activity(db, 1, 2, 2, at(16, 15), duration=30, deleted=1)            # deleted: not counted
    # Data quality. Contacts (post filled unless named):
    contact(db, 1, "Иван", "Петров", phones=("+7 (912) 345-67-89",))                 # duplicate of 2 by phone
    contact(db, 2, "Анна", "Смирнова", phones=("89123456789",))                      # duplicate of 1
    contact(db, 3, "иван", "Сидоров", emails=("ivan@x.ru",), post=None)              # lower case; no post
    contact(db, 4, "John", "smith", phones=("8 912 3456780",))                       # lower-case Latin surname
    contact(db, 5, "Олег", "Орлов", emails=("oleg@x.ru",), comments="тел. 8 912 3456781")    # phone in comments
    contact(db, 6, "Пётр", "Ёлкин", comments="WhatsApp +44 20 7946 0958")            # ... and nothing in fields
    contact(db, 7, "Ольга", "Белова", phones=("12-34",), emails=("A@x.ru",))         # bad phone; e-mail shared
    contact(db, 8, "Мария", "Белова", emails=("a@X.ru ",))                           # duplicate of 7 by e-mail
    contact(db, 9, "Иван", "Петров", phones=("+7 912 345 67 89",), deleted=1)        # deleted: no rule counts
    contact(db, 10, "Юлия", "Носова", emails=("yu@x.ru",), comments="Просит скидку 15% до 01.04")  # no phone there
    contact(db, 11, "Лев", "Львов", phones=("+7 999 111-22-33",), comments="моб. 8-912-345-67-82")  # field filled
    company(db, 1, "ооо ромашка", industry=None)            # lower case, no phone or e-mail, no industry
    company(db, 2, "ООО «Вектор»", phones=("8 (495) 123-45-67",))
    with portal.serve() as simulator:
        target = folder / "warehouse.duckdb"
        load(target, webhook_url=simulator.webhook_url, progress="log")
    build(target)
    build_marts(target, as_of=NOW_LOCAL, settings=Settings(gap_min_deals=5))
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
                                "days_since_last_activity, days_in_stage FROM marts.deals_without_activities "
                                "ORDER BY deal_id")
    assert [f[:3] for f in forgotten] == [(3, "PREPAYMENT_INVOICE", True), (7, "FINAL_INVOICE", False)]
    (_, _, _, last3, since3, stage3), (_, _, _, last7, since7, stage7) = forgotten
    assert (last3, last7) == (datetime(2026, 3, 15, 10), datetime(2026, 3, 10, 10))
    assert (since3, stage3) == (5, 10)      # to-do started 15 March 10:00; in its stage since 10 March 10:00
    assert (since7, stage7) == (10, 12)     # call on 10 March; back at FINAL_INVOICE since 8 March
    assert rows(warehouse, "SELECT user_id, open_deals, forgotten_deals, forgotten_with_overdue FROM "
                           "marts.deals_without_activities_by_manager") == [(7, 2, 2, 1)]


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
    ]
    deals = rows(warehouse, "SELECT entity_id FROM marts.data_quality WHERE rule = 'no_planned_activity' ORDER BY 1")
    assert deals == [(3,), (7,)]
    summary = rows(warehouse, "SELECT entity_type, records_created, records_with_problems, problems, share_clean "
                              "FROM marts.data_quality_summary ORDER BY ALL")
    assert summary == [("company", 2, 1, 3, 0.5), ("contact", 10, 8, 11, 0.2)]
