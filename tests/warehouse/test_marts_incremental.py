"""Patched marts (a `Scope` in their header) equal a full rebuild, row for row, after every kind of change:
the simulator's live changes, and on a hand-made portal the ones it does not make (an activity moved to
another deal, a phone changed so a duplicate pair breaks, a deleted duplicate, a renamed deal, work with
no deal). Breaking the incremental path where it reads the old state makes the comparison fail."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pytest

from b24wh_simulator.client import SimulatorProcess
from pipelines.bitrix24.pipeline import load
from tests.conftest import portal_options
from tests.handmade import NOW, NOW_LOCAL, activity, handmade_warehouse, insert, task
from warehouse import marts as marts_module
from warehouse.build import build
from warehouse.catalogue import MART_TABLES, PATCHED_MARTS, Model
from warehouse.marts import MartsBuilt, build_marts

TZ = ZoneInfo("Europe/Moscow")


def refresh(portal: SimulatorProcess, warehouse: Path, as_of: datetime, **options: Any) -> MartsBuilt:
    load(warehouse, credentials=portal.webhook_url, progress="log", **options)
    build(warehouse)
    return build_marts(warehouse, as_of=as_of)


def differences(warehouse: Path, as_of: datetime) -> dict[str, tuple[int, int]]:
    """Rows of each mart that a full rebuild of a copy, as of the same moment, does not have, and the other way."""
    rebuilt = warehouse.with_name("rebuilt.duckdb")
    rebuilt.write_bytes(warehouse.read_bytes())
    assert build_marts(rebuilt, as_of=as_of, full=True).mode == "full"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        con.execute(f"ATTACH '{rebuilt}' AS other (READ_ONLY)")
        return {t: con.execute(f"SELECT (SELECT count(*) FROM (FROM marts.{t} EXCEPT ALL FROM other.marts.{t})), "
                               f"(SELECT count(*) FROM (FROM other.marts.{t} EXCEPT ALL FROM marts.{t}))").fetchone()
                for t in MART_TABLES}


def rows(warehouse: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def portal_now(portal: SimulatorProcess) -> datetime:
    return datetime.fromtimestamp(portal.control.truth()["now"], TZ).replace(tzinfo=None)


NO_DIFFERENCES = dict.fromkeys(MART_TABLES, (0, 0))


def test_patched_marts_equal_a_full_rebuild_after_the_portals_live_changes(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    with SimulatorProcess(**portal_options(deals=300, seed=61)) as portal:
        first = refresh(portal, warehouse, portal_now(portal))
        assert (first.mode, first.reason) == ("full", "no marts build on record")
        quiet = refresh(portal, warehouse, portal_now(portal))
        assert quiet.mode == "incremental" and differences(warehouse, quiet.as_of) == NO_DIFFERENCES
        # As the core build's test: two days later, new and moved deals, wins, losses, edits, calls, deletions.
        portal.control.apply_changes(
            advance=2 * 86400, new_deals=6, stage_moves=12, wins=4, losses=4, field_edits=12, new_calls=8,
            new_activities=10, complete_activities=6, new_contacts=3, new_tasks=5,
            deletions={"deal": 2, "activity": 2, "task": 2, "contact": 2, "company": 1})
        second = refresh(portal, warehouse, portal_now(portal), sweep=True)
        history = rows(warehouse, "SELECT count(*) FROM marts.user_history")[0][0]
    assert second.mode == "incremental", second.reason
    assert all(f"records of {m.name}" in second.reason for m in PATCHED_MARTS), second.reason
    assert differences(warehouse, second.as_of) == NO_DIFFERENCES
    assert history > 1000, "a history worth patching"


def _change_the_handmade_portal(store: Path, day: int) -> None:
    """What the simulator never does, `day` days after the hand-made portal's moment (tests/handmade.py), past
    its latest modification (an open to-do's, due the next day). Every contact was modified on 1 March: the
    first day only edits contact 13, so that the next load's cursor leaves the others out."""
    later = NOW + day * 86_400
    db = sqlite3.connect(store)
    if day == 1:
        db.execute("UPDATE contacts SET comments = 'Перезвонил', date_modify = ? WHERE id = 13", (later,))
    else:
        # Deal 7's call moves to deal 9; deal 3 is renamed and moves on to EXECUTING.
        db.execute("UPDATE activities SET owner_id = 9, last_updated = ? WHERE owner_id = 7 AND type_id = 2",
                   (later,))
        db.execute("UPDATE deals SET title = 'Deal 3, renamed', stage_id = 'EXECUTING', date_modify = ? WHERE id = 3",
                   (later,))
        insert(db, "stage_history", entity_type_id=2, type_id=2, owner_id=3, created_time=later, category_id=0,
               stage_semantic_id="P", stage_id="EXECUTING", is_deleted=0)
        # Contact 2's phone changes (no longer a duplicate of 1); contact 8 (duplicate of 7 by e-mail) is deleted.
        db.execute("UPDATE multifields SET value = '8 912 000 00 00' WHERE entity_type_id = 3 AND entity_id = 2")
        db.execute("UPDATE contacts SET date_modify = ? WHERE id = 2", (later,))
        db.execute("UPDATE contacts SET is_deleted = 1, date_modify = ? WHERE id = 8", (later,))
        # Work with no deal, and a meeting on deal 8.
        task(db, None, later - 3600, later + 86_400, closed=later - 1800)
        activity(db, 8, 1, 0, later - 2400, duration=600, created=later - 2400, updated=later)
    db.commit()
    db.close()


@pytest.fixture(scope="module")
def handmade(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, datetime]:
    """The hand-made warehouse with marts as of five days before its moment; a day later changed, loaded and
    built, marts patched; the next day changed again, loaded and its core built: that state (marts not yet
    patched) in a pristine copy, and the moment to patch them to."""
    folder = tmp_path_factory.mktemp("handmade")
    warehouse, store = handmade_warehouse(folder), folder / "portal.sqlite3"
    assert build_marts(warehouse, as_of=NOW_LOCAL - timedelta(days=5)).mode == "full"
    for day in (1, 2):
        _change_the_handmade_portal(store, day)
        moment = NOW_LOCAL + timedelta(days=day, hours=1)
        with SimulatorProcess(store=store, clock="frozen", anchor=moment.isoformat(), rate=1000, burst=100000,
                              operating_limit=0) as portal:
            load(warehouse, credentials=portal.webhook_url, progress="log")
        build(warehouse)
        if day == 1:
            assert build_marts(warehouse, as_of=moment).mode == "incremental"
    pristine = folder / "pristine.duckdb"
    pristine.write_bytes(warehouse.read_bytes())
    return warehouse, pristine, moment


def test_patched_marts_follow_moved_activities_broken_duplicates_and_work_without_a_deal(
        handmade: tuple[Path, Path, datetime]) -> None:
    warehouse, _, later = handmade
    patched = build_marts(warehouse, as_of=later)
    assert patched.mode == "incremental", patched.reason
    assert differences(warehouse, later) == NO_DIFFERENCES
    calls = rows(warehouse, "SELECT entity_id, description FROM marts.user_history WHERE event_type = "
                            "'call_outgoing' AND entity_id IN (7, 9)")
    assert calls == [(9, "called (Work), 1 min — deal 'Deal 9'")], "the call left deal 7's history for deal 9's"
    assert rows(warehouse, "SELECT DISTINCT entity_title FROM marts.user_history WHERE entity_type = 'deal' "
                           "AND entity_id = 3") == [("Deal 3, renamed",)]
    assert rows(warehouse, "SELECT event_type FROM marts.user_history WHERE entity_id IS NULL AND event_at > "
                           f"TIMESTAMP '{NOW_LOCAL}' ORDER BY event_at") == [("task_created",), ("task_closed",)]
    assert rows(warehouse, "SELECT count(*) FROM marts.user_history WHERE event_type = 'meeting' AND entity_id = 8"
                ) == [(1,)]
    # Deal 1's calls of 16-18 March were after the first build's moment: they came in as the moment moved on.
    assert rows(warehouse, "SELECT count(*) FROM marts.user_history WHERE entity_type = 'deal' AND entity_id = 1 "
                           "AND event_type LIKE 'call_%'")[0][0] == 3
    assert rows(warehouse, "SELECT entity_id FROM marts.data_quality WHERE rule = 'duplicate'") == []


@pytest.mark.parametrize(("patched", "old_state", "nothing", "marts"), [
    ("user_history", "FROM meta.replaced_fact_activity", "FROM (FROM meta.replaced_fact_activity WHERE false)",
     ("user_history",)),
    ("data_quality", "WHERE q.rule = 'duplicate'", "WHERE false", ("data_quality",)),
    ("manager_events", "WHERE change_set IN ('activities', 'tasks', 'deals')", "WHERE change_set IN ('deals')",
     ("manager_activity",)),
    ("funnel_visits", "WHERE change_set = 'deals'", "WHERE false", ("funnel", "funnel_team")),
    ("deal_work", "SELECT deal_id FROM meta.replaced_fact_activity", "SELECT NULL",
     ("deals_without_activities",))])
def test_a_patch_that_forgets_the_old_state_differs_from_the_full_rebuild(
        handmade: tuple[Path, Path, datetime], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        patched: str, old_state: str, nothing: str, marts: tuple[str, ...]) -> None:
    """The comparison above can fail: a scope without the activities' old owners, without the old shared
    phones and e-mails, without the changed activities and tasks (a meeting held, a task added and closed),
    or without the changed deals' stage visits (deal 3 moved on) leaves rows a full rebuild does not have."""
    _, pristine, later = handmade
    warehouse = tmp_path / "warehouse.duckdb"
    warehouse.write_bytes(pristine.read_bytes())
    break_scope(monkeypatch, tmp_path, patched, old_state, nothing)
    assert build_marts(warehouse, as_of=later).mode == "incremental"
    found = differences(warehouse, later)
    assert all(found[mart] != (0, 0) for mart in marts), found
    assert {t: d for t, d in found.items() if t not in (*marts, "data_quality_summary")} == \
        {t: (0, 0) for t in MART_TABLES if t not in (*marts, "data_quality_summary")}


def break_scope(monkeypatch: pytest.MonkeyPatch, folder: Path, patched: str, part: str, instead: str) -> None:
    """The scope of `patched` with `part` replaced, for the marts builds that follow, which patch with it."""
    model = next(m for m in PATCHED_MARTS if m.name == patched)
    text = model.scope_path.read_text("utf-8")
    assert part in text
    broken = folder / f"{patched}.sql"
    broken.write_text(text.replace(part, instead), "utf-8")
    real = Model.scope_path
    monkeypatch.setattr(Model, "scope_path", property(lambda m: broken if m.name == patched else real.fget(m)))
    # The broken scope is a new version of the marts, which would make the build full: forced incremental.
    monkeypatch.setattr(marts_module, "_version", lambda *_: "broken")
    monkeypatch.setattr(marts_module, "_why_full", lambda *_: "")


FORGOTTEN = "SELECT deal_id, has_overdue_activity, overdue_activities FROM marts.deals_without_activities ORDER BY 1"
PASSED = "BETWEEN (SELECT as_of FROM last) AND"   # a start or deadline the moment passed since the last marts build


@pytest.fixture(scope="module")
def handmade_now(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The hand-made warehouse with its marts as of its moment (a pristine copy for each test to change)."""
    warehouse = handmade_warehouse(tmp_path_factory.mktemp("handmade_now"))
    assert build_marts(warehouse, as_of=NOW_LOCAL).mode == "full"
    return warehouse


@pytest.mark.parametrize("broken", [False, True])
def test_deals_whose_deadlines_the_moment_passed_are_redone_with_nothing_loaded(
        handmade_now: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, broken: bool) -> None:
    """On the hand-made portal deal 7's only open work is task 3, due 21 March at noon (tests/handmade.py). A day
    later, with nothing loaded in between, the task is overdue and the deal forgotten: intermediate.deal_work
    redoes the deals whose deadlines the moment passed. A scope without them (`broken`) leaves deal 7 out."""
    warehouse = tmp_path / "warehouse.duckdb"
    warehouse.write_bytes(handmade_now.read_bytes())
    forgotten = rows(warehouse, FORGOTTEN)
    assert 7 not in [deal for deal, *_ in forgotten]
    if broken:
        break_scope(monkeypatch, tmp_path, "deal_work", PASSED, "BETWEEN TIMESTAMP '2100-01-01' AND")
    later = NOW_LOCAL + timedelta(days=1, hours=1)
    assert build_marts(warehouse, as_of=later).mode == "incremental"
    if broken:
        assert rows(warehouse, FORGOTTEN) == forgotten
        assert differences(warehouse, later)["deals_without_activities"] == (0, 1)
    else:
        assert rows(warehouse, FORGOTTEN) == sorted([*forgotten, (7, True, 1)])
        assert differences(warehouse, later) == NO_DIFFERENCES
