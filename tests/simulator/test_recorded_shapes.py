"""The simulator answers as live portals did in the recordings (`tests/fixtures/bitrix24-real`): the same keys,
JSON types and empty values, date-only fields as midnight UTC in the portal's offset, and operating time in
every batch command's time block."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from b24wh_simulator.client import SimulatorProcess
from tests.conftest import Rest, portal_options, recorded
from tests.simulator.test_conformance_examples import assert_same_shape


@pytest.fixture(scope="module")
def bogota() -> Iterator[SimulatorProcess]:
    """A portal west of UTC, with the operating-time limiter on (as in the cloud)."""
    with SimulatorProcess(**portal_options(deals=80, seed=13, timezone="America/Bogota",
                                           operating_limit=480)) as sim:
        yield sim


def test_a_classic_lead_row_has_the_recorded_keys_types_and_empty_dates(bogota: SimulatorProcess) -> None:
    live = recorded("call_single_success.json")["result"]["result"]["order0"]
    rows = Rest(bogota.webhook_url).call("crm.lead.list", {"select": ["*"], "filter": {"STATUS_SEMANTIC_ID": "P"},
                                                           "start": -1})["result"]
    ours = next(r for r in rows if r["BIRTHDATE"] == "")
    assert_same_shape(live, ours)
    assert ours["DATE_CLOSED"] == "" and live["DATE_CLOSED"] == "", "an open lead's empty datetime is \"\""
    assert ours["COMPANY_ID"] is None or isinstance(ours["COMPANY_ID"], str)


def test_date_only_fields_are_midnight_utc_in_the_portals_offset(bogota: SimulatorProcess) -> None:
    deals = Rest(bogota.webhook_url).call("crm.deal.list", {"select": ["ID", "BEGINDATE", "CLOSEDATE"],
                                                           "start": -1})["result"]
    for deal in deals:
        for field in ("BEGINDATE", "CLOSEDATE"):
            value = datetime.fromisoformat(deal[field])
            assert value.isoformat().endswith("T19:00:00-05:00"), deal   # the evening before, in Bogota
            assert value.astimezone(UTC).time().isoformat() == "00:00:00"


def test_every_batch_command_and_the_batch_carry_operating_time(bogota: SimulatorProcess) -> None:
    live = recorded("call_several_success.json")
    body = Rest(bogota.webhook_url).call("batch", {"cmd": {"a": "crm.deal.list?start=-1&select[]=ID",
                                                           "b": "crm.lead.list?start=-1&select[]=ID"}})
    assert_same_shape(live["time"], body["time"])
    for name in ("a", "b"):
        block = body["result"]["result_time"][name]
        assert_same_shape(next(iter(live["result"]["result_time"].values())), block)
        assert block["operating"] > 0 and block["operating_reset_at"] > block["start"]
    assert "operating" in body["time"] and "operating_reset_at" in body["time"]


def test_an_empty_batch_has_php_arrays_like_the_recording(bogota: SimulatorProcess) -> None:
    live = recorded("batch_list_empty.json")
    body = Rest(bogota.webhook_url).call("batch", {"cmd": {"order0000000000": "crm.lead.list?start=-1&filter[ID]=0"}})
    assert body["result"]["result"] == live["result"]["result"] == {"order0000000000": []}
    for key in ("result_error", "result_next"):
        assert body["result"][key] == live["result"][key] == []


def test_stage_history_ids_come_as_strings_as_recorded(bogota: SimulatorProcess) -> None:
    first_page, _ = recorded("stagehistory.json")
    live = first_page["result"]["items"][0]
    ours = Rest(bogota.webhook_url).call("crm.stagehistory.list", {
        "entityTypeId": 2, "order": {"ID": "ASC"}, "filter": {"TYPE_ID": 2}, "start": -1})["result"]["items"][0]
    assert_same_shape(live, ours)
    assert isinstance(ours["ID"], str) and isinstance(ours["OWNER_ID"], str)


def test_pipelines_and_tasks_have_the_recorded_shapes(bogota: SimulatorProcess) -> None:
    rest = Rest(bogota.webhook_url)
    live_categories = recorded("crm_category_list.json")["result"]["categories"]
    ours = rest.call("crm.category.list", {"entityTypeId": 2})["result"]["categories"]
    assert_same_shape(live_categories[0], ours[0])       # the default pipeline 0 first, without origin keys
    assert_same_shape(live_categories[1], ours[1])
    first_page, _ = recorded("get_all_tasks.json")
    live_task = first_page["result"]["tasks"][0]
    task = rest.call("tasks.task.list", {"select": ["ID", "STATUS", "GROUP", "SUB_STATUS"], "order": {"ID": "ASC"},
                                         "start": -1})["result"]["tasks"][0]
    assert set(task) == set(live_task) and task["group"] == [] and task["subStatus"] == "-1"
    assert_same_shape(live_task, task)
