"""The star schema built from simulated portals, compared with what the portal itself says."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from b24wh_simulator.client import SimulatorProcess
from pipelines.bitrix24.pipeline import load
from tests.conftest import Rest, portal_options
from warehouse import build as build_module
from warehouse.build import Built, WarehouseError, build
from warehouse.catalogue import CORE_TABLES


def rows(warehouse: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def refresh(portal: SimulatorProcess, warehouse: Path, **options: Any) -> Built:
    load(warehouse, credentials=portal.webhook_url, progress="log", **options)
    return build(warehouse)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Any:
    warehouse = tmp_path_factory.mktemp("wh") / "warehouse.duckdb"
    with SimulatorProcess(**portal_options(deals=500, seed=41)) as portal:
        yield portal, warehouse, refresh(portal, warehouse).counts


def test_core_tables_hold_the_portals_rows(built: Any) -> None:
    portal, _, counts = built
    truth = portal.control.truth()["rows"]
    assert counts["fact_deal"] == truth["deals"]
    assert counts["fact_deal_stage"] == truth["deal_stage_history"]
    assert counts["fact_activity"] == truth["activities"]
    assert counts["dim_stage"] == truth["deal_stages"]
    assert counts["dim_manager"] == truth["users"] + 1, "one version per user, plus the unknown manager"
    assert counts["fact_invoice"] == truth["invoices"] and counts["fact_call"] == truth["calls"]
    assert counts["dim_contact"] == truth["contacts"] and counts["dim_company"] == truth["companies"]
    assert counts["dim_deal"] == truth["deals"]


def test_the_daily_pipeline_snapshot_ends_with_todays_open_deals(built: Any) -> None:
    _, warehouse, _ = built
    last_day, open_then = rows(warehouse, "SELECT date_key, sum(open_deals) FROM core.fact_pipeline_daily "
                                          "GROUP BY date_key ORDER BY date_key DESC LIMIT 1")[0]
    open_now = rows(warehouse, "SELECT count(*) FROM core.fact_deal WHERE status = 'open' AND NOT is_deleted")[0][0]
    assert open_then == open_now and last_day > 20260000


def test_stage_visits_and_their_durations_match_the_portals_history(built: Any) -> None:
    portal, warehouse, _ = built
    history = Rest(portal.webhook_url).all_rows("crm.stagehistory.list", {"entityTypeId": 2})
    by_deal: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for item in history:
        by_deal[int(item["OWNER_ID"])].append(item)    # ids come as strings, as live portals send them
    expected = set()
    for deal_id, items in by_deal.items():
        items.sort(key=lambda i: (datetime.fromisoformat(i["CREATED_TIME"]), int(i["ID"])))
        seen: dict[str, int] = defaultdict(int)
        for i, item in enumerate(items):
            seen[item["STAGE_ID"]] += 1
            entered = datetime.fromisoformat(item["CREATED_TIME"])
            hours = None
            if i + 1 < len(items):
                exited = datetime.fromisoformat(items[i + 1]["CREATED_TIME"])
                hours = round((exited - entered).total_seconds() / 3600, 6)
            expected.add((deal_id, item["STAGE_ID"], seen[item["STAGE_ID"]], entered.replace(tzinfo=None), hours))
    got = {(d, s, v, e, None if h is None else round(h, 6)) for d, s, v, e, h in rows(
        warehouse, "SELECT deal_id, stage_id, visit_number, entered_at, hours_in_stage FROM core.fact_deal_stage")}
    assert got == expected


def test_every_foreign_key_resolves_and_no_duration_is_negative(built: Any) -> None:
    _, warehouse, _ = built
    checks = {
        "fact_deal_stage.stage_key": "SELECT count(*) FROM core.fact_deal_stage f LEFT JOIN core.dim_stage d "
                                     "USING (stage_key) WHERE d.stage_key IS NULL",
        "fact_deal_stage.manager_key": "SELECT count(*) FROM core.fact_deal_stage f LEFT JOIN core.dim_manager d "
                                       "USING (manager_key) WHERE d.manager_key IS NULL",
        "fact_activity.date_key": "SELECT count(*) FROM core.fact_activity f LEFT JOIN core.dim_date d "
                                  "USING (date_key) WHERE d.date_key IS NULL",
        "fact_deal.stage_key": "SELECT count(*) FROM core.fact_deal WHERE stage_key IS NULL",
        "negative hours": "SELECT count(*) FROM core.fact_deal_stage WHERE hours_in_stage < 0",
        "unknown managers": "SELECT count(*) FROM core.fact_deal WHERE manager_key = -1",
    }
    assert {name: rows(warehouse, sql)[0][0] for name, sql in checks.items()} == dict.fromkeys(checks, 0)


def test_a_department_change_makes_a_second_manager_version(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    with SimulatorProcess(**portal_options(deals=150, seed=43)) as portal:
        refresh(portal, warehouse)
        moved = portal.control.apply_changes(advance=3600, department_changes=1)[0]["id"]
        users = {int(u["ID"]): u for u in Rest(portal.webhook_url).call("user.get")["result"]}
        refresh(portal, warehouse)
    versions = rows(warehouse, f"SELECT department_id, valid_from, valid_to, is_current FROM core.dim_manager "
                               f"WHERE user_id = {moved} ORDER BY valid_from")
    assert len(versions) == 2
    (old_dept, first_from, first_to, first_current), (new_dept, second_from, second_to, second_current) = versions
    assert new_dept == users[moved]["UF_DEPARTMENT"][0] != old_dept
    assert first_from == datetime(1900, 1, 1) and first_to == second_from and not first_current
    assert second_to == datetime(9999, 12, 31) and second_current
    others = rows(warehouse, f"SELECT count(*) FROM core.dim_manager WHERE user_id != {moved} AND user_id IS NOT NULL")
    assert others[0][0] == len(users) - 1


def test_deleted_deals_are_flagged_and_leave_the_stage_facts(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    with SimulatorProcess(**portal_options(deals=150, seed=47)) as portal:
        refresh(portal, warehouse)
        gone = {c["id"] for c in portal.control.apply_changes(advance=60, deletions={"deal": 3})}
        refresh(portal, warehouse, sweep=True)
    flagged = {r[0] for r in rows(warehouse, "SELECT deal_id FROM core.fact_deal WHERE is_deleted")}
    assert flagged == gone
    ids = ",".join(map(str, gone))
    assert rows(warehouse, f"SELECT count(*) FROM core.fact_deal_stage WHERE deal_id IN ({ids})")[0][0] == 0


class BrokenModel(build_module.Model):
    def sql(self, timezone: str, **fills: str) -> str:
        return "SELECT no_such_column FROM raw.activities"


def test_a_failing_build_leaves_the_previous_warehouse_intact(built: Any, monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    _, source, _ = built
    warehouse = tmp_path / "copy.duckdb"
    warehouse.write_bytes(source.read_bytes())
    before = {table: rows(warehouse, f"SELECT count(*) FROM core.{table}") for table in ("fact_deal", "fact_activity")}
    monkeypatch.setattr(build_module, "MODELS", (*build_module.MODELS[:-1], BrokenModel("core", "fact_activity")))
    with pytest.raises(WarehouseError, match=r"core\.fact_activity"):
        build(warehouse, full=True)
    after = {table: rows(warehouse, f"SELECT count(*) FROM core.{table}") for table in ("fact_deal", "fact_activity")}
    assert after == before


def differences(warehouse: Path, other: Path) -> dict[str, tuple[int, int]]:
    """Per core table: rows only in `warehouse`, rows only in `other` (as multisets)."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        con.execute(f"ATTACH '{other}' AS other (READ_ONLY)")
        return {t: con.execute(f"SELECT (SELECT count(*) FROM (FROM core.{t} EXCEPT ALL FROM other.core.{t})), "
                               f"(SELECT count(*) FROM (FROM other.core.{t} EXCEPT ALL FROM core.{t}))").fetchone()
                for t in CORE_TABLES}


def test_an_incremental_build_redoes_what_the_load_touched_and_equals_a_full_build(tmp_path: Path) -> None:
    warehouse, rebuilt = tmp_path / "warehouse.duckdb", tmp_path / "rebuilt.duckdb"
    with SimulatorProcess(**portal_options(deals=400, seed=61)) as portal:
        first = refresh(portal, warehouse)
        assert (first.mode, first.reason) == ("full", "no build on record")
        quiet = refresh(portal, warehouse)    # only rows the cursor overlap re-reads come back
        assert quiet.mode == "incremental" and max(quiet.changed.values()) <= 3
        calls_before = portal.control.truth()["rows"]["calls"]
        # Two days later: new and moved deals, wins (with invoices), losses, edits, calls, deletions.
        changes = portal.control.apply_changes(
            advance=2 * 86400, new_deals=6, stage_moves=12, wins=4, losses=4, field_edits=12, new_calls=8,
            new_activities=10, complete_activities=6, new_contacts=3, new_tasks=5,
            deletions={"deal": 2, "activity": 2, "task": 2})
        second = refresh(portal, warehouse, sweep=True)
        new_calls = portal.control.truth()["rows"]["calls"] - calls_before
        rebuilt.write_bytes(warehouse.read_bytes())
        full = build(rebuilt, full=True)
    touched_deals = {c["id"] for c in changes if c["entity"] == "deal"}
    assert second.mode == "incremental"
    assert len(touched_deals) <= second.changed["deals"] < len(touched_deals) + 10, "touched, plus overlap re-reads"
    assert second.changed["calls"] == new_calls >= 8 and second.changed["contacts"] >= 3
    assert second.changed["tasks"] >= 5 + 2, "new tasks and deleted ones (the sweep), plus completed ones"
    assert second.counts == full.counts
    assert differences(warehouse, rebuilt) == dict.fromkeys(CORE_TABLES, (0, 0))


def test_a_change_in_reference_data_makes_the_build_full(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    with SimulatorProcess(**portal_options(deals=120, seed=67)) as portal:
        refresh(portal, warehouse)
        portal.control.apply_changes(advance=3600, department_changes=1, stage_moves=3)
        after = refresh(portal, warehouse)
    assert (after.mode, after.reason) == ("full", "core.dim_manager changed")
