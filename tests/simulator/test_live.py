"""A living portal: changes applied through the control interface show up in the REST API."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from b24wh_simulator.client import SimulatorProcess
from tests.conftest import Rest, portal_options


def iso(portal_time: int) -> str:
    return datetime.fromtimestamp(portal_time).astimezone().isoformat()


def modified_since(hook: Rest, method: str, since: str, field: str = "DATE_MODIFY") -> set[int]:
    rows = hook.all_rows(method, {"select": ["ID"], "filter": {f">={field}": since}})
    return {int(r["ID"]) for r in rows}


def test_changes_appear_in_the_api_at_portal_time(fresh_portal: Any) -> None:
    control, hook = fresh_portal.control, Rest(fresh_portal.webhook_url)
    before = control.truth()["rows"]
    now = control.advance(3600)
    changes = control.apply_changes(new_deals=3, stage_moves=4, wins=2, losses=1, field_edits=4, new_calls=3,
                                    complete_activities=2, new_leads=2, new_contacts=2)
    by_kind: dict[str, list[int]] = {}
    for change in changes:
        by_kind.setdefault(change["kind"], []).append(change["id"])
    since = iso(now)
    touched_deals = set(by_kind["new_deal"] + by_kind["stage_move"] + by_kind["win"] + by_kind["loss"])
    edited = {c["id"] for c in changes if c["kind"] == "field_edit" and c["entity"] == "deal"}
    assert modified_since(hook, "crm.deal.list", since) == touched_deals | edited
    history = hook.all_rows("crm.stagehistory.list", {"entityTypeId": 2, "filter": {">=CREATED_TIME": since}})
    assert {int(h["OWNER_ID"]) for h in history} == touched_deals
    won = hook.call("crm.deal.list", {"filter": {"@ID": by_kind["win"]}, "select": ["ID", "STAGE_SEMANTIC_ID"]})
    assert {r["STAGE_SEMANTIC_ID"] for r in won["result"]} == {"S"}
    calls = hook.call("voximplant.statistic.get", {"FILTER": {">=CALL_START_DATE": since}})["result"]
    assert {int(c["CRM_ACTIVITY_ID"]) for c in calls} == set(by_kind["new_call"])
    updated = hook.all_rows("crm.activity.list", {"select": ["ID", "OWNER_ID", "OWNER_TYPE_ID"],
                                                  "filter": {">=LAST_UPDATED": since}})
    touched = set(by_kind["new_call"] + by_kind["complete_activity"])
    assert touched <= {int(a["ID"]) for a in updated}
    new_leads = {int(r["ID"]) for r in hook.all_rows("crm.lead.list", {"select": ["ID"],
                                                                        "filter": {">=DATE_MODIFY": since}})}
    for extra in (a for a in updated if int(a["ID"]) not in touched):   # work logged on records created now
        owner = int(extra["OWNER_ID"])
        assert owner in (set(by_kind["new_deal"]) if extra["OWNER_TYPE_ID"] == "2" else new_leads)
    after = control.truth()["rows"]
    assert after["deals"] == before["deals"] + 3
    assert after["leads"] >= before["leads"] + 2   # new deals may come from new leads too
    assert after["contacts"] >= before["contacts"] + 2


def test_deleted_deals_vanish_with_their_history_and_come_back_when_restored(fresh_portal: Any) -> None:
    control, hook = fresh_portal.control, Rest(fresh_portal.webhook_url)
    all_ids = {int(r["ID"]) for r in hook.all_rows("crm.deal.list", {"select": ["ID"]})}
    history_before = len(hook.all_rows("crm.stagehistory.list", {"entityTypeId": 2}))
    deleted = [c["id"] for c in control.apply_changes(deletions={"deal": 5, "contact": 2})
               if c["entity"] == "deal"]
    assert len(deleted) == 5
    remaining = {int(r["ID"]) for r in hook.all_rows("crm.deal.list", {"select": ["ID"]})}
    assert remaining == all_ids - set(deleted), "keyset paging steps over the deleted ids"
    history = hook.all_rows("crm.stagehistory.list", {"entityTypeId": 2})
    assert not {h["OWNER_ID"] for h in history} & set(deleted) and len(history) < history_before
    for deal_id in deleted:
        assert hook.call("crm.activity.list", {"filter": {"OWNER_TYPE_ID": 2, "OWNER_ID": deal_id}})["total"] == 0
    restored = [c["id"] for c in control.apply_changes(restores={"deal": 100}) if c["entity"] == "deal"]
    assert set(deleted) <= set(restored)
    assert {int(r["ID"]) for r in hook.all_rows("crm.deal.list", {"select": ["ID"]})} >= all_ids


def test_a_manager_changing_department_shows_in_user_get(fresh_portal: Any) -> None:
    hook = Rest(fresh_portal.webhook_url)
    before = {u["ID"]: u["UF_DEPARTMENT"] for u in hook.call("user.get")["result"]}
    moved = fresh_portal.control.apply_changes(department_changes=1)[0]["id"]
    after = {u["ID"]: u["UF_DEPARTMENT"] for u in hook.call("user.get")["result"]}
    assert after[str(moved)] != before[str(moved)]
    assert {k: v for k, v in after.items() if k != str(moved)} == {k: v for k, v in before.items() if k != str(moved)}


def test_the_same_changes_on_the_same_portal_give_the_same_result() -> None:
    outcomes = []
    for _ in range(2):
        with SimulatorProcess(**portal_options(deals=80, seed=9)) as sim:
            changes = sim.control.apply_changes(advance=600, new_deals=2, stage_moves=3, deletions={"deal": 1},
                                                field_edits=2)
            outcomes.append((changes, sim.control.truth()))
    assert outcomes[0] == outcomes[1]


def test_live_mode_keeps_changing_the_portal(fresh_portal: Any) -> None:
    control = fresh_portal.control
    before = control.truth()["rows"]["deals"]
    control.live(0.2, new_deals=1)
    time.sleep(1.5)
    control.stop_live()
    grown = control.truth()["rows"]["deals"] - before
    assert grown >= 3
    time.sleep(0.5)
    assert control.truth()["rows"]["deals"] - before == grown, "stopping live mode stops the changes"


def test_unknown_change_kinds_are_refused(fresh_portal: Any) -> None:
    import pytest

    from b24wh_simulator.client import SimulatorError

    with pytest.raises(SimulatorError, match="unknown change kinds"):
        fresh_portal.control.apply_changes(explode=1)


def test_a_reset_portal_is_the_generated_one_again(fresh_portal: Any) -> None:
    before = fresh_portal.control.status()
    truth = fresh_portal.control.truth()
    fresh_portal.control.apply_changes(advance=3600, new_deals=4, deletions=2, stage_moves=3)
    fresh_portal.control.set_limits(operating_limit=1.0, blocked="payment")
    fresh_portal.control.set_faults(rate_503=0.5)
    fresh_portal.control.live(1, new_activities=1)
    fresh_portal.control.reset()
    after = fresh_portal.control.status()
    assert after["rows"] == before["rows"] and after["now"] == before["now"]
    assert after["limits"] == before["limits"] and after["faults"] == before["faults"]
    assert after["requests"] == {} and fresh_portal.control.truth() == truth
    deals = Rest(fresh_portal.webhook_url).call("crm.deal.list", {"select": ["ID"], "start": -1})
    assert "result" in deals, "answers again, unblocked and without faults"
