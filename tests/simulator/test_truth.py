"""The ground-truth rules on hand-made portals whose answers are worked out by hand below."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator

import pytest

from b24wh_simulator import truth
from tests.handmade import NOW, TZ, activity, at, deal, insert, new_store, task


@pytest.fixture
def db() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:")
    new_store(conn)
    yield conn
    conn.close()


def test_funnel_reach_follows_history_through_skips_backward_moves_reopens_and_moves(db: sqlite3.Connection) -> None:
    deal(db, 1, [(1, "NEW"), (2, "PREPARATION"), (4, "EXECUTING"), (6, "WON")])            # skips a stage
    deal(db, 2, [(1, "NEW"), (2, "PREPARATION"), (3, "NEW"), (5, "LOSE")])                 # back, then lost
    deal(db, 3, [(1, "NEW"), (2, "LOSE"), (9, "PREPARATION"), (10, "PREPAYMENT_INVOICE")])  # reopened, open
    deal(db, 4, [(1, "NEW"), (2, "PREPARATION"), (3, "C2:NEW"), (4, "C2:OFFER"), (5, "C2:WON")])  # moved
    deal(db, 5, [(1, "NEW"), (2, "PREPARATION")], deleted=1)                               # deleted
    deal(db, 6, [(1, "NEW"), (2, "APOLOGY")])                                              # lost at once
    deal(db, 7, [(1, "NEW"), (3, "FINAL_INVOICE"), (5, "WON"), (8, "FINAL_INVOICE")])       # won, reopened
    funnel, lost = truth.funnel_and_lost(db, TZ)
    totals: Counter[tuple[int, str]] = Counter()
    for row in funnel:
        totals[(row["pipeline_id"], row["stage_id"])] += row["deals_reached"]
    assert dict(totals) == {
        (0, "NEW"): 6, (0, "PREPARATION"): 5, (0, "PREPAYMENT_INVOICE"): 3, (0, "EXECUTING"): 2,
        (0, "FINAL_INVOICE"): 2, (0, "WON"): 2,
        (2, "C2:NEW"): 1, (2, "C2:OFFER"): 1, (2, "C2:INVOICE"): 1, (2, "C2:WON"): 1,
    }
    assert {r["cohort_month"] for r in funnel} == {"2026-03-01"}
    assert sorted((r["reason_stage_id"], r["lost_from_stage_id"], r["deals_lost"], r["amount_lost"])
                  for r in lost) == [("APOLOGY", "NEW", 1, 1000.0), ("LOSE", "NEW", 1, 1000.0)]


def test_forgotten_deals_have_nothing_planned_ahead(db: sqlite3.Connection) -> None:
    deal(db, 1, [(1, "NEW")])      # a call planned tomorrow: not forgotten
    activity(db, 1, 2, 2, NOW + 86_400, completed="N")
    deal(db, 2, [(1, "NEW")])      # only an overdue to-do: forgotten, flagged overdue
    activity(db, 2, 6, 0, at(15), completed="N", deadline=at(15))
    deal(db, 3, [(1, "NEW")])      # only finished work: forgotten, not overdue
    activity(db, 3, 2, 2, at(10), duration=60)
    deal(db, 4, [(1, "NEW"), (2, "WON")])    # closed: never forgotten
    deal(db, 5, [(1, "NEW")])      # its open activity was deleted: forgotten
    activity(db, 5, 6, 0, NOW + 3600, completed="N", deleted=1)
    deal(db, 6, [(1, "NEW")])      # an open task bound to it from the Tasks module: not forgotten
    task(db, 6, at(12), NOW + 86_400)
    deal(db, 7, [(1, "NEW")])      # only an overdue task: forgotten, flagged overdue
    task(db, 7, at(12), at(14))
    task(db, None, at(12), NOW + 86_400)    # a task bound to nothing plans no deal's work
    rows = truth.forgotten_deals(db, NOW)
    assert [(r["deal_id"], r["has_overdue_activity"]) for r in rows] == [(2, True), (3, False), (5, False),
                                                                         (7, True)]
    assert rows[1]["last_activity_at"] == at(10)


def test_activity_counts_per_manager_and_day(db: sqlite3.Connection) -> None:
    deal(db, 1, [(1, "NEW")])
    activity(db, 1, 2, 2, at(16, 10), duration=120)                      # outgoing call, 2 min
    activity(db, 1, 2, 1, at(16, 11), duration=60)                       # incoming call, 1 min
    activity(db, 1, 2, 1, at(16, 12), completed="N")                     # missed: incoming, zero length
    activity(db, 1, 2, 2, at(16, 13), completed="N")                     # planned call that did not happen
    activity(db, 1, 4, 2, at(16, 14))                                    # e-mail out
    activity(db, 1, 4, 1, at(17, 9))                                     # e-mail in, next day
    activity(db, 1, 1, 0, at(17, 15), duration=3600)                     # meeting
    activity(db, 1, 3, 0, at(18), created=at(16, 9), updated=at(18, 16))   # task created 16th, closed 18th
    activity(db, 1, 6, 0, NOW + 86_400, completed="N", created=at(17, 10))  # to-do created 17th, open
    activity(db, 1, 2, 2, at(16, 15), duration=30, deleted=1)            # deleted: not counted
    activity(db, 1, 2, 2, at(16, 16), duration=30, user=8)               # someone else's
    task(db, None, at(17, 11), at(19), closed=at(18, 12))                 # own task: created 17th, closed 18th
    task(db, 1, at(16, 17), at(19), deleted=1)                            # deleted task: not counted
    rows = {(r["user_id"], r["date"]): {k: v for k, v in r.items() if k not in ("user_id", "date")}
            for r in truth.activity_daily(db, TZ, NOW)}
    assert rows == {
        (7, "2026-03-16"): {"calls_outgoing": 1, "calls_incoming": 1, "calls_missed": 1, "call_seconds": 180,
                            "emails_outgoing": 1, "tasks_created": 1},
        (7, "2026-03-17"): {"emails_incoming": 1, "meetings": 1, "tasks_created": 2},
        (7, "2026-03-18"): {"tasks_closed": 2},
        (8, "2026-03-16"): {"calls_outgoing": 1, "call_seconds": 30},
    }


@pytest.mark.parametrize(("raw", "expected"), [
    ("+7 (912) 345-67-89", "79123456789"), ("8 912 3456789", "79123456789"), ("89123456789", "79123456789"),
    ("9123456789", "79123456789"), ("+44 20 7946 0958", "442079460958"), ("12-34", None), ("тел", None),
    ("+7 (912) 34", None),
])
def test_phone_normalisation(raw: str, expected: str | None) -> None:
    assert truth.normalise_phone(raw) == expected


def test_data_quality_counts_planted_defects_and_live_duplicates(db: sqlite3.Connection) -> None:
    for contact_id, deleted in ((1, 0), (2, 0), (3, 0), (4, 1), (5, 0), (6, 0)):
        insert(db, "contacts", id=contact_id, date_create=at(1), date_modify=at(1), assigned_by_id=7,
               is_deleted=deleted)
    phones = {1: "+7 (912) 345-67-89", 2: "89123456789", 3: "+7 900 000-00-01", 4: "8 900 000 00 01"}
    for owner, phone in phones.items():
        insert(db, "multifields", entity_type_id=3, entity_id=owner, type_id="PHONE", value_type="WORK", value=phone)
    insert(db, "multifields", entity_type_id=3, entity_id=5, type_id="EMAIL", value_type="WORK", value="A@x.ru")
    insert(db, "multifields", entity_type_id=3, entity_id=6, type_id="EMAIL", value_type="WORK", value="a@X.ru ")
    insert(db, "planted_defects", entity_type="contact", entity_id=3, rule="lowercase_name")
    insert(db, "planted_defects", entity_type="contact", entity_id=4, rule="phone_in_comment")
    hits = {(r["entity_id"], r["rule"]) for r in truth.data_quality(db)}
    assert hits == {(1, "duplicate"), (2, "duplicate"), (5, "duplicate"), (6, "duplicate"), (3, "lowercase_name")}
