"""The simulator answers like the vendor's documented examples: same keys, nesting and value types.

Each documented request is replayed against the running simulator (with filters loosened where the
doc's sample values do not exist in a generated portal), and the answer's shape is compared with the
documented response: every documented key is present, and where both values are set they have the
same JSON type (string vs number vs boolean vs array vs object), recursively.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from b24wh_simulator.client import SimulatorProcess
from tests.conftest import Rest, example, portal_options

# Keys in the docs' sample rows that belong to the sample portal, not to Bitrix24 itself
# (its custom fields and their type-specific SETTINGS).
PORTAL_SPECIFIC = ("UF_", "PARENT_ID_", "ADDRESS_LOC_ADDR_ID", "SETTINGS")
TIME_KEYS = {"start", "finish", "duration", "date_start", "date_finish"}


def json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), "null")


def assert_same_shape(documented: Any, ours: Any, path: str = "$") -> None:
    if documented is None or ours is None:
        return
    assert json_type(documented) == json_type(ours), f"{path}: documented {documented!r}, simulator {ours!r}"
    if isinstance(documented, dict) and documented and all(k.isdigit() for k in documented):
        # An object keyed by ids (timeline comment FILES): compare one entry with one entry.
        if ours:
            assert_same_shape(next(iter(documented.values())), next(iter(ours.values())), f"{path}.<id>")
    elif isinstance(documented, dict):
        for key, value in documented.items():
            if key.startswith(PORTAL_SPECIFIC):
                continue
            assert key in ours, f"{path}: documented key {key!r} missing from {sorted(ours)}"
            assert_same_shape(value, ours[key], f"{path}.{key}")
    elif isinstance(documented, list) and documented and ours:
        assert_same_shape(documented[0], ours[0], f"{path}[0]")


def assert_time_block(block: dict[str, Any]) -> None:
    assert set(block) >= TIME_KEYS
    assert isinstance(block["start"], int | float) and isinstance(block["date_start"], str)


# (example file, request to send instead of the documented one: None = send it as documented)
LIST_CASES = [
    ("crm.deal.list.json", {"SELECT": ["ID", "TITLE", "TYPE_ID", "CATEGORY_ID", "STAGE_ID", "OPPORTUNITY",
                                       "IS_MANUAL_OPPORTUNITY", "ASSIGNED_BY_ID", "DATE_CREATE"],
                            "FILTER": {">OPPORTUNITY": 10000}, "ORDER": {"TITLE": "ASC", "OPPORTUNITY": "ASC"}}),
    ("crm.lead.list.json", {"select": ["*", "UF_*"], "start": 50, "order": {"STATUS_ID": "ASC"}}),
    ("crm.contact.list.json", {"SELECT": ["ID", "NAME", "LAST_NAME", "EMAIL", "EXPORT", "ASSIGNED_BY_ID",
                                          "DATE_CREATE"], "FILTER": {"HAS_EMAIL": "Y"},
                               "ORDER": {"LAST_NAME": "ASC", "NAME": "ASC"}}),
    ("crm.company.list.json", {"ORDER": {"DATE_CREATE": "ASC"}, "FILTER": {"HAS_PHONE": "Y"},
                               "SELECT": ["TITLE", "ASSIGNED_BY_ID", "PHONE"]}),
    ("crm.activity.list.json", {"order": {"ID": "DESC"}, "filter": {"TYPE_ID": 2}, "select": ["*"], "start": 0}),
    ("crm.stagehistory.list.json", {"entityTypeId": 2, "order": {"ID": "ASC"}, "filter": {"OWNER_ID": 1}}),
    ("crm.status.list.json", None),
    ("crm.category.list.json", None),
    ("voximplant.statistic.get.json", {"FILTER": {">=CALL_START_DATE": "2025-01-01T00:00:00+01:00"},
                                       "SORT": "ID", "ORDER": "ASC"}),
    ("crm.timeline.comment.list.json", {"filter": {"ENTITY_TYPE": "deal", "ENTITY_ID": list(range(1, 301))},
                                        "select": ["ID", "CREATED", "ENTITY_ID", "ENTITY_TYPE", "AUTHOR_ID",
                                                   "COMMENT", "FILES"]}),
    ("user.get.json", {"SORT": "ID", "ORDER": "asc"}),
    ("department.get.json", {"sort": "NAME", "order": "DESC", "PARENT": 2}),
    ("crm.deal.userfield.list.json", {"filter": {"LANG": "de"}, "order": {"USER_TYPE_ID": "ASC", "SORT": "ASC"}}),
]


@pytest.fixture(scope="module")
def documented_history() -> Iterator[Rest]:
    """A portal answering stage history with numbers, as the 2024 docs show (live portals sent strings)."""
    with SimulatorProcess(**portal_options(deals=60, seed=9, history_ids="numbers")) as sim:
        yield Rest(sim.webhook_url)


@pytest.mark.parametrize(("name", "request_body"), LIST_CASES, ids=[c[0] for c in LIST_CASES])
def test_list_answers_have_the_documented_shape(rest: Rest, name: str, request_body: dict[str, Any] | None,
                                                request: pytest.FixtureRequest) -> None:
    if name == "crm.stagehistory.list.json":
        rest = request.getfixturevalue("documented_history")
    doc = example(name)
    response = rest.post(doc["method"], request_body if request_body is not None else doc["request"])
    assert response.status_code == doc["http_status"] == 200
    ours = response.json()
    documented = doc["response"]
    result = documented["result"]
    rows = result if isinstance(result, list) else next(iter(result.values()))
    our_result = ours["result"]
    our_rows = our_result if isinstance(our_result, list) else our_result[next(iter(result))]
    assert our_rows, f"{name}: the simulator returned no rows to compare"
    assert isinstance(ours["total"], int)
    assert_time_block(ours["time"])
    for documented_row in rows:
        # Rows of a different kind (user-field types) are compared with our row of the same kind.
        kind = documented_row.get("USER_TYPE_ID")
        ours_row = next((r for r in our_rows if r.get("USER_TYPE_ID") == kind), None)
        if ours_row is None:
            continue
        assert_same_shape(documented_row, ours_row)
        assert {k for k in documented_row if not k.startswith(PORTAL_SPECIFIC)} <= set(ours_row)


def test_enumeration_user_fields_list_their_options(rest: Rest) -> None:
    doc = example("crm.deal.userfield.list.json")
    documented = next(r for r in doc["response"]["result"] if r["USER_TYPE_ID"] == "enumeration")
    ours = rest.call("crm.deal.userfield.list", {"filter": {"USER_TYPE_ID": "enumeration", "LANG": "en"}})["result"]
    assert ours and all(r["USER_TYPE_ID"] == "enumeration" for r in ours)
    assert_same_shape(documented, ours[0])
    assert ours[0]["EDIT_FORM_LABEL"] == "Loss reason"


def test_activity_communications_only_when_named(rest: Rest) -> None:
    plain = rest.call("crm.activity.list", {"select": ["*"], "start": -1})["result"][0]
    assert "COMMUNICATIONS" not in plain and "FILES" not in plain


def test_deal_fields_describe_every_field(rest: Rest) -> None:
    doc = example("crm.deal.fields.json")["response"]["result"]
    ours = rest.call("crm.deal.fields")["result"]
    for name, descriptor in doc.items():
        if name.startswith(PORTAL_SPECIFIC) or name in ("CONTACT_IDS",):
            continue
        assert name in ours, f"crm.deal.fields lacks {name}"
        assert_same_shape(descriptor, ours[name], name)
    uf = ours["UF_CRM_LOSS_REASON"]
    assert uf["isDynamic"] is True and uf["type"] == "enumeration"
    assert [i["VALUE"] for i in uf["items"]][:2] == ["Дорого", "Выбрали конкурента"], "in the portal's language"


def test_start_minus_one_counts_nothing(rest: Rest) -> None:
    doc = example("crm.item.list.start-minus-1.json")
    request = dict(doc["request"], entityTypeId=31)
    ours = rest.call("crm.item.list", request)
    assert ours["total"] == doc["response"]["total"] == 0
    assert "next" not in ours and "next" not in doc["response"]
    assert isinstance(ours["result"]["items"], list)


def test_item_list_rows_are_camel_case_with_native_numbers(rest: Rest) -> None:
    doc = example("crm.item.list.json")["response"]["result"]["items"][0]
    ours = rest.call("crm.item.list", {"entityTypeId": 31, "select": ["id", "title", "stageId", "assignedById",
                                                                        "opportunity", "isManualOpportunity"]})
    row = ours["result"]["items"][0]
    for key in ("id", "title", "stageId", "assignedById", "opportunity", "isManualOpportunity"):
        assert_same_shape(doc[key], row[key], key)
    assert row["stageId"].startswith("DT31_")


def test_batch_envelope_matches_the_documented_one(rest: Rest) -> None:
    doc = example("batch.json")
    body = {"halt": 0, "cmd": {"get_user": "user.current",
                               "get_department": "department.get?ID=$result[get_user][UF_DEPARTMENT][0]"}}
    ours = rest.call("batch", body)
    assert_same_shape(doc["response"]["result"]["result"]["get_user"], ours["result"]["result"]["get_user"])
    assert ours["result"]["result"]["get_department"][0]["ID"] == str(
        ours["result"]["result"]["get_user"]["UF_DEPARTMENT"][0])
    assert ours["result"]["result_error"] == [] and ours["result"]["result_next"] == []
    assert ours["result"]["result_total"] == {"get_department": 1}
    assert set(ours["result"]["result_time"]) == {"get_user", "get_department"}
    assert_time_block(ours["time"])


@pytest.mark.parametrize("name", ["error.NO_AUTH_FOUND.json", "error.ERROR_METHOD_NOT_FOUND.json"])
def test_system_errors_match_the_documented_ones(portal: Any, rest: Rest, name: str) -> None:
    doc = example(name)
    if doc["response"]["error"] == "NO_AUTH_FOUND":   # a call without any credentials
        response = Rest(portal.oauth["rest_url"]).post("crm.deal.list")
    else:
        response = rest.post("crm.deal.nosuchmethod")
    assert response.status_code == doc["http_status"]
    assert response.json()["error"] == doc["response"]["error"]


def test_classic_errors_have_an_empty_code(rest: Rest) -> None:
    doc = example("crm.deal.list.error.json")
    response = rest.post("crm.deal.list", {"filter": "ID=1"})
    assert response.status_code == doc["http_status"] == 400
    assert response.json() == doc["response"]


def test_item_list_rejects_unknown_filter_fields(rest: Rest) -> None:
    doc = example("crm.item.list.error.json")
    response = rest.post("crm.item.list", {"entityTypeId": 31, "filter": {"FIELD": 1}})
    assert response.status_code == doc["http_status"]
    assert response.json() == doc["response"]


def test_category_list_rejects_unknown_entity_types(rest: Rest) -> None:
    doc = example("crm.category.list.error.json")
    response = rest.post("crm.category.list", {"entityTypeId": 999})
    assert response.status_code == doc["http_status"]
    assert response.json() == doc["response"]
