"""List semantics over real HTTP: paging, `start=-1`, select masks, order, every filter prefix.

Expected rows are computed in the test from a full ID-keyset export of the same portal, never from
the simulator's own query code.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from tests.conftest import Rest


@pytest.fixture(scope="module")
def deals(rest: Rest) -> list[dict[str, Any]]:
    return rest.all_rows("crm.deal.list", {"select": ["*", "UF_*"]})


def ids(rows: list[dict[str, Any]]) -> list[int]:
    return [int(r["ID"]) for r in rows]


def test_pages_hold_50_rows_with_total_and_next(rest: Rest, deals: list[dict[str, Any]]) -> None:
    first = rest.call("crm.deal.list", {"select": ["ID"], "order": {"ID": "ASC"}})
    assert len(first["result"]) == 50 and first["total"] == len(deals) and first["next"] == 50
    last_start = (len(deals) - 1) // 50 * 50
    last = rest.call("crm.deal.list", {"select": ["ID"], "order": {"ID": "ASC"}, "start": last_start})
    assert "next" not in last and ids(last["result"]) == ids(deals)[last_start:]


def test_start_past_the_end_gives_an_empty_page_with_the_same_total(rest: Rest, deals: list[dict[str, Any]]) -> None:
    answer = rest.call("crm.deal.list", {"select": ["ID"], "start": len(deals) + 100})
    assert answer["result"] == [] and answer["total"] == len(deals) and "next" not in answer


def test_start_minus_one_skips_the_count(rest: Rest) -> None:
    answer = rest.call("crm.deal.list", {"select": ["ID"], "order": {"ID": "ASC"}, "start": -1})
    assert answer["total"] == 0 and "next" not in answer and len(answer["result"]) == 50


def test_keyset_export_sees_every_deal_once(portal: Any, deals: list[dict[str, Any]]) -> None:
    assert ids(deals) == sorted(set(ids(deals)))
    assert len(deals) == portal.control.truth()["rows"]["deals"]


def test_an_empty_filter_result_is_an_empty_list(rest: Rest) -> None:
    answer = rest.call("crm.deal.list", {"filter": {">ID": 10**9}, "start": -1})
    assert answer == {"result": [], "total": 0, "time": answer["time"]}


def test_select_masks(rest: Rest) -> None:
    star = rest.call("crm.deal.list", {"select": ["*"], "start": -1})["result"][0]
    assert "STAGE_ID" in star and not any(k.startswith("UF_") for k in star)
    uf = rest.call("crm.deal.list", {"select": ["UF_*"], "start": -1})["result"][0]
    assert set(uf) == {"ID", "UF_CRM_LOSS_REASON", "UF_CRM_DEAL_CHANNEL", "UF_CRM_CONTRACT_DATE",
                       "UF_CRM_PRIORITY_CLIENT", "UF_CRM_EXPECTED_MARGIN"}
    default = rest.call("crm.deal.list", {"start": -1})["result"][0]
    assert set(default) == set(star) | set(uf)
    contact = rest.call("crm.contact.list", {"select": ["*"], "filter": {"HAS_PHONE": "Y"}, "start": -1})["result"][0]
    assert "PHONE" not in contact, "multifields come only when named"
    named = rest.call("crm.contact.list", {"select": ["ID", "PHONE", "EMAIL"], "filter": {"HAS_PHONE": "Y"},
                                           "start": -1})["result"][0]
    assert named["PHONE"][0]["TYPE_ID"] == "PHONE" and set(named["PHONE"][0]) == {"ID", "VALUE_TYPE", "VALUE",
                                                                                     "TYPE_ID"}


def test_values_are_typed_like_a_portal(deals: list[dict[str, Any]]) -> None:
    deal = deals[0]
    assert isinstance(deal["ID"], str) and deal["ID"].isdigit()
    assert isinstance(deal["OPPORTUNITY"], str) and len(deal["OPPORTUNITY"].split(".")[1]) == 2
    assert deal["CLOSED"] in ("Y", "N") and deal["OPENED"] == "Y"
    created = datetime.fromisoformat(deal["DATE_CREATE"])
    assert created.utcoffset() is not None and created.utcoffset().total_seconds() == 3 * 3600
    begin = datetime.fromisoformat(deal["BEGINDATE"])
    utc = begin.astimezone(UTC)
    assert (utc.hour, utc.minute, utc.second) == (0, 0, 0), "date fields are midnight UTC in the portal's offset"
    assert begin.utcoffset() is not None and begin.utcoffset().total_seconds() == 3 * 3600
    assert isinstance(deal["UF_CRM_PRIORITY_CLIENT"], bool)


def test_user_get_types_active_as_boolean_and_departments_as_ints(rest: Rest) -> None:
    users = rest.call("user.get", {"sort": "ID", "order": "ASC"})["result"]
    assert all(isinstance(u["ACTIVE"], bool) for u in users)
    assert any(u["ACTIVE"] is False for u in users), "one manager has left"
    assert all(isinstance(d, int) for u in users for d in u["UF_DEPARTMENT"])
    in_dept = rest.call("user.get", {"UF_DEPARTMENT": 3})["result"]
    assert in_dept and all(3 in u["UF_DEPARTMENT"] for u in in_dept)


def test_order_by_several_fields(rest: Rest, deals: list[dict[str, Any]]) -> None:
    order = {"OPPORTUNITY": "DESC", "ID": "ASC"}
    answer = rest.call("crm.deal.list", {"select": ["ID", "OPPORTUNITY"], "order": order})
    expected = sorted(deals, key=lambda d: (-float(d["OPPORTUNITY"]), int(d["ID"])))[:50]
    assert ids(answer["result"]) == ids(expected)


def test_activity_list_defaults_to_start_time_order(rest: Rest) -> None:
    rows = rest.call("crm.activity.list", {"select": ["ID", "START_TIME"]})["result"]
    starts = [datetime.fromisoformat(r["START_TIME"]) for r in rows]
    assert starts == sorted(starts)


CASES = [
    ({">OPPORTUNITY": 200000}, lambda d: float(d["OPPORTUNITY"]) > 200000),
    ({">=OPPORTUNITY": 150000, "<OPPORTUNITY": 300000}, lambda d: 150000 <= float(d["OPPORTUNITY"]) < 300000),
    ({"<=ID": 40}, lambda d: int(d["ID"]) <= 40),
    ({"@STAGE_ID": ["WON", "C1:WON"]}, lambda d: d["STAGE_ID"] in ("WON", "C1:WON")),
    ({"!@CATEGORY_ID": [0, 1]}, lambda d: d["CATEGORY_ID"] not in ("0", "1")),
    ({"STAGE_SEMANTIC_ID": "P"}, lambda d: d["STAGE_SEMANTIC_ID"] == "P"),
    ({"=CATEGORY_ID": 1}, lambda d: d["CATEGORY_ID"] == "1"),
    ({"!STAGE_SEMANTIC_ID": "F"}, lambda d: d["STAGE_SEMANTIC_ID"] != "F"),
    ({"!=CLOSED": "Y"}, lambda d: d["CLOSED"] != "Y"),
    ({"%TITLE": "лиценз"}, lambda d: "лиценз" in d["TITLE"]),
    ({"=%TITLE": "%аудит"}, lambda d: d["TITLE"].endswith("аудит")),
    ({"%=TITLE": "Сделка #1%"}, lambda d: d["TITLE"].startswith("Сделка #1")),
    ({"!%TITLE": "CRM"}, lambda d: "CRM" not in d["TITLE"]),
    ({"!=%TITLE": "%аудит"}, lambda d: not d["TITLE"].endswith("аудит")),
    ({"><ID": [10, 20]}, lambda d: 10 <= int(d["ID"]) <= 20),
    ({"!><ID": [10, 290]}, lambda d: not 10 <= int(d["ID"]) <= 290),
    ({">=DATE_CREATE": "2026-09-01"}, lambda d: d["DATE_CREATE"] >= "2026-09-01"),
    ({">DATE_MODIFY": "2026-10-15T12:00:00+03:00"}, lambda d: d["DATE_MODIFY"] > "2026-10-15T12:00:00+03:00"),
    ({">=DATE_CREATE": "2026-09-01T00:00:00+00:00"},
     lambda d: datetime.fromisoformat(d["DATE_CREATE"]) >= datetime.fromisoformat("2026-09-01T00:00:00+00:00")),
    ({"UF_CRM_PRIORITY_CLIENT": 1}, lambda d: d["UF_CRM_PRIORITY_CLIENT"] is True),
    ({"0": {"LOGIC": "OR", "0": {"CATEGORY_ID": 1}, "1": {">OPPORTUNITY": 500000}}},
     lambda d: d["CATEGORY_ID"] == "1" or float(d["OPPORTUNITY"]) > 500000),
    ({"NO_SUCH_FIELD": 1}, lambda d: True),
]


@pytest.mark.parametrize(("filt", "predicate"), CASES, ids=[str(c[0]) for c in CASES])
def test_filter_prefixes(rest: Rest, deals: list[dict[str, Any]], filt: dict[str, Any], predicate: Any) -> None:
    expected = [int(d["ID"]) for d in deals if predicate(d)]
    got = ids(rest.all_rows("crm.deal.list", {"select": ["ID"], "filter": filt}))
    assert got == expected
    assert 0 < len(expected) < len(deals) or filt == {"NO_SUCH_FIELD": 1}


def test_multifield_filters_match_exact_values(rest: Rest) -> None:
    contact = rest.call("crm.contact.list", {"select": ["ID", "EMAIL"], "filter": {"HAS_EMAIL": "Y"}, "start": -1})
    first = contact["result"][0]
    found = rest.call("crm.contact.list", {"select": ["ID"], "filter": {"EMAIL": first["EMAIL"][0]["VALUE"]}})
    assert first["ID"] in ids(found["result"]) or int(first["ID"]) in ids(found["result"])
    partial = rest.call("crm.contact.list", {"filter": {"EMAIL": first["EMAIL"][0]["VALUE"][:5]}})
    assert partial["total"] == 0


@pytest.mark.parametrize("style", ["get", "form", "json"])
def test_parameters_arrive_as_query_form_or_json(portal: Any, style: str) -> None:
    url = portal.webhook_url + "crm.deal.list.json"
    query = "select[]=ID&select[]=STAGE_ID&filter[>=ID]=5&filter[<ID]=8&order[ID]=DESC"
    if style == "get":
        response = requests.get(f"{url}?{query}", timeout=30)
    elif style == "form":
        response = requests.post(url, data=query, headers={"Content-Type": "application/x-www-form-urlencoded"},
                                 timeout=30)
    else:
        response = requests.post(url, json={"SELECT": ["ID", "STAGE_ID"], "FILTER": {">=ID": 5, "<ID": 8},
                                            "ORDER": {"ID": "DESC"}}, timeout=30)
    rows = response.json()["result"]
    assert [r["ID"] for r in rows] == [i for i in ("7", "6", "5") if i in {r["ID"] for r in rows}]
    assert set(rows[0]) == {"ID", "STAGE_ID"}


def test_stage_history_rows_per_entity_type(rest: Rest) -> None:
    lead = rest.call("crm.stagehistory.list", {"entityTypeId": 1, "start": -1})["result"]["items"][0]
    assert {"STATUS_ID", "STATUS_SEMANTIC_ID"} <= set(lead) and "STAGE_ID" not in lead
    invoice = rest.call("crm.stagehistory.list", {"entityTypeId": 31, "start": -1})["result"]["items"][0]
    assert invoice["STAGE_ID"].startswith("DT31_") and invoice["OWNER_ID"].isdigit(), "strings, as recorded live"
    unsupported = rest.post("crm.stagehistory.list", {"entityTypeId": 5})
    assert unsupported.status_code == 400 and unsupported.json()["error"] == 0


def test_timeline_comments_require_an_entity_filter(rest: Rest) -> None:
    response = rest.post("crm.timeline.comment.list", {"filter": {"ENTITY_TYPE": "deal"}})
    assert response.status_code == 400 and response.json()["error"] == ""


def test_category_list_includes_the_default_pipeline(rest: Rest) -> None:
    categories = rest.call("crm.category.list", {"entityTypeId": 2})["result"]["categories"]
    assert [c["id"] for c in categories][-1] == 0
    assert {c["id"] for c in categories} == {0, 1, 2}
