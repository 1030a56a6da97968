"""The generated portal: deterministic by seed, and a team a sales director would recognise."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from statistics import median
from zoneinfo import ZoneInfo

import pytest

from b24wh_simulator import truth
from b24wh_simulator.config import DataConfig
from b24wh_simulator.generator import generate

TABLES = ("deals", "leads", "contacts", "companies", "multifields", "activities", "stage_history", "invoices",
          "timeline_comments", "users", "departments", "statuses", "categories", "planted_defects")


def digest(path: Path) -> str:
    h = hashlib.sha256()
    with sqlite3.connect(path) as db:
        for table in TABLES:
            for row in db.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3"):
                h.update(repr(row).encode())
    return h.hexdigest()


def test_the_same_seed_gives_the_same_portal(tmp_path: Path) -> None:
    cfg = DataConfig(deals=400, seed=3)
    generate(str(tmp_path / "a.sqlite3"), cfg)
    generate(str(tmp_path / "b.sqlite3"), cfg)
    generate(str(tmp_path / "c.sqlite3"), DataConfig(deals=400, seed=4))
    assert digest(tmp_path / "a.sqlite3") == digest(tmp_path / "b.sqlite3") != digest(tmp_path / "c.sqlite3")


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    path = tmp_path_factory.mktemp("gen") / "portal.sqlite3"
    generate(str(path), DataConfig(deals=4000, seed=21))
    conn = sqlite3.connect(path)
    yield conn
    conn.close()


def scalar(db: sqlite3.Connection, sql: str) -> int:
    return int(db.execute(sql).fetchone()[0] or 0)


def test_counts_scale_with_the_number_of_deals(db: sqlite3.Connection) -> None:
    deals = scalar(db, "SELECT count(*) FROM deals")
    assert deals == 4000
    assert 8 <= scalar(db, "SELECT count(*) FROM activities") / deals <= 14
    assert 0.5 <= scalar(db, "SELECT count(*) FROM leads") / deals <= 1.0
    assert 0.005 <= scalar(db, "SELECT avg(is_deleted) * 1000 FROM deals") / 1000 <= 0.02


def test_managers_are_unequal(db: sqlite3.Connection) -> None:
    per_manager = dict(db.execute("SELECT responsible_id, count(*) FROM activities GROUP BY 1").fetchall())
    deals = dict(db.execute("SELECT assigned_by_id, count(*) FROM deals GROUP BY 1").fetchall())
    rate = {m: per_manager.get(m, 0) / n for m, n in deals.items()}
    idle = min(rate, key=rate.get)
    assert rate[idle] < 0.15 * median(rate.values()), "one manager is nearly idle"
    win_rate = dict(db.execute("SELECT assigned_by_id, avg(stage_semantic_id = 'S') FROM deals WHERE "
                               "stage_semantic_id != 'P' GROUP BY 1 HAVING count(*) >= 30").fetchall())
    assert max(win_rate, key=win_rate.get) == 2, "the star (user 2) wins the largest share of deals"
    left = db.execute("SELECT id FROM users WHERE active = 0").fetchall()
    assert len(left) == 1 and deals.get(left[0][0], 0) > 0, "a manager who left keeps their deals"
    sloppy = dict(db.execute("SELECT c.assigned_by_id, count(*) * 1.0 / (SELECT count(*) FROM contacts x WHERE "
                             "x.assigned_by_id = c.assigned_by_id) FROM planted_defects p JOIN contacts c ON "
                             "c.id = p.entity_id AND p.entity_type = 'contact' GROUP BY 1").fetchall())
    assert max(sloppy, key=sloppy.get) == 4, "the sloppy manager (user 4) leaves the dirtiest data"


def test_every_pipeline_has_one_visible_gap(db: sqlite3.Connection) -> None:
    funnel, _ = truth.funnel_and_lost(db, ZoneInfo("Europe/Moscow"))
    orders = truth.stage_orders(db)
    for pipeline, stages in orders.items():
        process = sorted((o, s) for s, (o, sem) in stages.items() if sem == "P")
        won = next(s for s, (_, sem) in stages.items() if sem == "S")
        reach = {s: sum(r["deals_reached"] for r in funnel if r["pipeline_id"] == pipeline and r["stage_id"] == s)
                 for s in [s for _, s in process] + [won]}
        chain = [s for _, s in process] + [won]
        steps = [reach[b] / reach[a] for a, b in pairwise(chain)]
        worst = min(steps)
        assert worst < 0.75 * median(steps), f"pipeline {pipeline} steps {steps}"
        assert sorted(steps)[1] > worst * 1.2, f"pipeline {pipeline}: exactly one step stands out {steps}"


def test_stage_histories_have_real_world_shapes(db: sqlite3.Connection) -> None:
    assert scalar(db, "SELECT count(*) FROM stage_history WHERE entity_type_id = 2 AND type_id = 5") > 0, \
        "deals moved between pipelines"
    history = db.execute("SELECT owner_id, stage_id, stage_semantic_id FROM stage_history WHERE entity_type_id = 2 "
                         "ORDER BY owner_id, created_time, id").fetchall()
    orders = {s: o for p in truth.stage_orders(db).values() for s, (o, _) in p.items()}
    skipped = backward = reopened = 0
    for (a_owner, a_stage, a_sem), (b_owner, b_stage, b_sem) in pairwise(history):
        if a_owner != b_owner:
            continue
        if a_sem == b_sem == "P" and orders.get(b_stage, 0) - orders.get(a_stage, 0) >= 2:
            skipped += 1
        if a_sem == b_sem == "P" and orders.get(b_stage, 0) < orders.get(a_stage, 0) and a_stage[:2] == b_stage[:2]:
            backward += 1
        if a_sem in ("S", "F") and b_sem == "P":
            reopened += 1
    assert skipped > 0 and backward > 0 and reopened > 0
    assert scalar(db, "SELECT count(*) FROM deals d JOIN leads l ON l.id = d.lead_id AND l.status_id = 'CONVERTED'") \
        > 0.2 * scalar(db, "SELECT count(*) FROM deals")


def test_activities_happen_on_working_days_and_hours(db: sqlite3.Connection) -> None:
    tz = ZoneInfo("Europe/Moscow")
    starts = [datetime.fromtimestamp(r[0], tz) for r in db.execute("SELECT start_time FROM activities")]
    working = sum(1 for s in starts if s.weekday() < 5 and 9 <= s.hour < 19)
    assert working / len(starts) > 0.97
    kinds = dict(db.execute("SELECT type_id || '/' || direction || '/' || (end_time = start_time), count(*) "
                            "FROM activities GROUP BY 1").fetchall())
    for kind in ("2/2/0", "2/1/0", "2/1/1", "4/1/1", "4/2/1", "1/0/0", "3/0/0", "6/0/1"):
        assert kinds.get(kind, 0) > 0, f"no activities of kind {kind}"
    anchor = DataConfig().anchor_ts
    overdue = scalar(db, f"SELECT count(*) FROM activities WHERE completed = 'N' AND deadline < {anchor}")
    assert overdue > 0
    forgotten = len(truth.forgotten_deals(db, anchor))
    open_deals = scalar(db, "SELECT count(*) FROM deals WHERE stage_semantic_id = 'P' AND is_deleted = 0")
    assert 0.1 * open_deals < forgotten < 0.6 * open_deals, "some open deals have nothing planned"


def test_dirty_data_of_every_kind(db: sqlite3.Connection) -> None:
    rules = dict(db.execute("SELECT rule, count(*) FROM planted_defects GROUP BY 1").fetchall())
    assert set(rules) == {"phone_in_comment", "no_phone_no_email", "bad_phone", "lowercase_name"}
    names = db.execute("SELECT name, last_name FROM contacts c JOIN planted_defects p ON p.entity_id = c.id "
                       "AND p.entity_type = 'contact' AND p.rule = 'lowercase_name'").fetchall()
    lowered = [n for pair in names for n in pair if n and n[0].islower()]
    assert len(lowered) == len(names), "each planted record has a name starting in lower case"
    assert any(n[0].isascii() for n in lowered) and any("а" <= n[0] <= "я" for n in lowered), \
        "both Latin and Cyrillic"
    dups = {r["rule"] for r in truth.data_quality(db)}
    assert "duplicate" in dups
    comments = [r[0] for r in db.execute("SELECT comments FROM contacts c JOIN planted_defects p ON p.entity_id = c.id "
                                         "AND p.rule = 'phone_in_comment' AND p.entity_type = 'contact'")]
    assert all(truth.normalise_phone(c) or "+44" in c for c in comments)


def test_invoices_calls_and_custom_fields(db: sqlite3.Connection) -> None:
    paid = scalar(db, "SELECT count(*) FROM invoices WHERE stage_id = 'DT31_3:P' AND parent_id2 IS NOT NULL")
    assert paid > 0.3 * scalar(db, "SELECT count(*) FROM deals WHERE stage_semantic_id = 'S'")
    assert scalar(db, "SELECT count(*) FROM calls") > 0
    types = {r[0] for r in db.execute("SELECT DISTINCT user_type_id FROM userfields")}
    assert {"enumeration", "string", "date", "boolean", "double"} <= types
