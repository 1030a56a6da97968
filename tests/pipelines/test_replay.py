"""Responses recorded on live portals (`tests/fixtures/bitrix24-real`), fed through the client and the
converters with no simulator: the rows, types and dates that come out are what a real portal means."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
import requests

from pipelines.bitrix24.auth import WebhookAuth
from pipelines.bitrix24.catalogue import BY_NAME
from pipelines.bitrix24.client import Bitrix24Client
from pipelines.bitrix24.convert import (
    ARROW_TYPES,
    CONVERTERS,
    arrow_schema,
    to_date,
    typed_column,
    typed_row,
    typed_table,
)
from pipelines.bitrix24.errors import ConfigurationError
from pipelines.bitrix24.paging import rows_of
from pipelines.bitrix24.source import check_portal_timezone
from tests.conftest import RECORDED, recorded

WEBHOOK = "https://example.bitrix24.ru/rest/1/s3cr3tcode/"


class Replay(requests.Session):
    """A session that answers every POST with the next recorded body, and remembers what was asked."""

    def __init__(self, *bodies: Any) -> None:
        super().__init__()
        self.bodies = list(bodies)
        self.sent: list[tuple[str, Any]] = []

    def post(self, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.sent.append((str(url), kwargs.get("json")))
        response = requests.Response()
        response.status_code = 200
        response._content = json.dumps(self.bodies.pop(0)).encode()
        response.headers["Content-Type"] = "application/json"
        return response


def replayed_client(*bodies: Any) -> Bitrix24Client:
    client = Bitrix24Client(WebhookAuth.from_url(WEBHOOK), rate=1000, burst=1000)
    client.session = Replay(*bodies)
    return client


def test_an_empty_batch_answer_has_php_arrays_for_its_empty_maps() -> None:
    batch = replayed_client(recorded("batch_list_empty.json")).batch({"order0000000000": "crm.lead.list?start=-1"})
    assert batch.results == {"order0000000000": []}
    assert batch.errors == {} and batch.totals == {"order0000000000": 0}
    assert batch.time["date_start"] == "2022-06-01T17:33:47+03:00" and batch.time["operating"] == 0


def test_errors_listed_without_command_names_leave_no_result_for_the_failed_commands() -> None:
    body = recorded("crm_get_batch_mix_success_and_errors.json")
    batch = replayed_client(body).batch({"35943": "crm.lead.get?ID=35943", "x": "crm.lead.get?ID=x",
                                         "0": "crm.lead.get?ID=0"})
    assert batch.results == {"35943": {"ID": "35943"}}
    assert batch.errors == {}, "PHP sent the errors as a list: no command is named, so none is trusted"
    assert set(batch.results) < {"35943", "x", "0"}


def test_a_batch_where_every_command_failed_has_an_empty_result() -> None:
    batch = replayed_client(recorded("crm_get_batch_of_two_error.json")).batch({"a": "crm.lead.get?ID=a"})
    assert batch.results == {} and batch.errors == {} and batch.totals == {}


def test_operating_time_of_each_command_reaches_the_client_ledger() -> None:
    body = recorded("call_several_success.json")
    client = replayed_client(body)
    client.batch({name: f"crm.lead.get?ID={name}" for name in body["result"]["result"]})
    operating = {name: block["operating"] for name, block in body["result"]["result_time"].items()}
    assert list(operating.values()) == [pytest.approx(2.6955912), 0, 0]
    assert client.ledger.reported["crm.lead.get"][0] == max(operating.values()), "a later 0 hides no earlier 2.7 s"


def test_stage_history_recorded_with_string_ids_types_as_numbers() -> None:
    first_page, chained = recorded("stagehistory.json")    # a first call, then a batch of chained pages
    entity = BY_NAME["deal_stage_history"]
    results = [first_page["result"], *chained["result"]["result"].values()]
    rows = [typed_row(r, entity.types) for result in results for r in rows_of(entity, result)]
    assert len(rows) == 490
    first = rows[0]
    assert first == {"ID": 7365, "TYPE_ID": 2, "OWNER_ID": 523,
                     "CREATED_TIME": datetime.fromisoformat("2022-01-25T10:18:00+03:00"), "CATEGORY_ID": 0,
                     "STAGE_SEMANTIC_ID": "P", "STAGE_ID": "UC_KW9988"}
    assert all(isinstance(r["ID"], int) and isinstance(r["OWNER_ID"], int) for r in rows)


def test_a_flat_entitys_pages_become_one_arrow_table_typed_like_its_rows() -> None:
    first_page, chained = recorded("stagehistory.json")
    entity = BY_NAME["deal_stage_history"]
    page = [r for result in (first_page["result"], *chained["result"]["result"].values())
            for r in rows_of(entity, result)]
    table = typed_table(page, entity.types, arrow_schema(entity.types, key=entity.id_key))
    assert table.num_rows == 490
    assert table.column_names == ["id", "type_id", "owner_id", "created_time", "category_id", "stage_semantic_id",
                                  "stage_id", "status_id", "status_semantic_id"], "named as dlt names row columns"
    assert set(table.column("status_id").to_pylist()) == {None}, "deal history has stages, not statuses"
    assert not table.schema.field("id").nullable and table.schema.field("owner_id").nullable
    assert str(table.schema.field("created_time").type) == "timestamp[us, tz=UTC]"
    first = table.slice(0, 1).to_pylist()[0]
    assert first["id"] == 7365 and first["owner_id"] == 523 and first["stage_id"] == "UC_KW9988"
    assert first["created_time"] == datetime.fromisoformat("2022-01-25T10:18:00+03:00"), "the same instant, in UTC"
    typed = [typed_row(r, entity.types) for r in page]
    assert table.column("owner_id").to_pylist() == [r["OWNER_ID"] for r in typed]


def test_a_field_a_row_lacks_is_null_in_the_arrow_table() -> None:
    types = {"ID": "id", "OPPORTUNITY": "money", "CLOSED": "yn", "BEGINDATE": "date"}
    table = typed_table([{"ID": "7", "OPPORTUNITY": "10.5", "CLOSED": "Y", "BEGINDATE": "2026-03-19T19:00:00-05:00"},
                         {"ID": "8", "OPPORTUNITY": ""}], types, arrow_schema(types, key="ID"))
    assert table.to_pylist() == [
        {"id": 7, "opportunity": Decimal("10.50"), "closed": True, "begindate": to_date("2026-03-20")},
        {"id": 8, "opportunity": None, "closed": None, "begindate": None}]


def test_stage_history_chained_in_a_batch_comes_back_with_string_ids() -> None:
    body = recorded("crm_stagehistory_list.json")
    entity = BY_NAME["deal_stage_history"]
    batch = replayed_client(body).batch({"order0000000000": "crm.stagehistory.list?entityTypeId=2"})
    rows = [typed_row(r, entity.types) for r in rows_of(entity, batch.results["order0000000000"])]
    assert rows[0]["OWNER_ID"] == 5047 and rows[0]["ID"] == 10653 and rows[0]["STAGE_ID"] == "EXECUTING"


def test_a_classic_lead_row_with_empty_dates_and_string_numbers() -> None:
    body = recorded("call_single_success.json")
    lead = body["result"]["result"]["order0"]
    types = {**BY_NAME["leads"].types, "BIRTHDATE": "date"}
    row = typed_row(lead, types)
    assert row["ID"] == 35943 and row["OPPORTUNITY"] == Decimal("3607999.00")
    assert lead["BIRTHDATE"] == "" and row["BIRTHDATE"] is None
    assert lead["DATE_CLOSED"] == "" and row["DATE_CLOSED"] is None
    assert row["COMPANY_ID"] is None and row["HAS_PHONE"] is False
    assert row["DATE_CREATE"] == datetime.fromisoformat("2022-05-21T12:00:12+03:00")


def test_date_only_custom_fields_are_the_utc_date_of_the_value() -> None:
    items = recorded("crm_item_list.json")["result"]["items"]
    assert [to_date(i["ufCrm11_1712074666"]) for i in items] == [date(2024, 4, 19), date(2024, 5, 29),
                                                                date(2024, 6, 6)]


@pytest.mark.parametrize(("wire", "meant"), [
    ("2026-03-19T19:00:00-05:00", date(2026, 3, 20)),    # Bogota, New York in winter: the evening before
    ("2026-03-20T03:00:00+03:00", date(2026, 3, 20)),    # Moscow
    ("2026-03-20T10:00:00+10:00", date(2026, 3, 20)),    # Vladivostok
    ("2026-03-20T00:00:00+00:00", date(2026, 3, 20)),
    ("2026-03-20", date(2026, 3, 20)),
    ("", None),
])
def test_date_only_fields_mean_the_utc_date_west_and_east_of_utc(wire: str, meant: date | None) -> None:
    assert to_date(wire) == meant


def test_leads_paged_by_a_first_call_then_batches_type_every_row() -> None:
    pages = recorded("crm_lead_list_several_pages_success.json")
    rows = list(pages[0]["result"])
    for batch in pages[1:]:
        for result in batch["result"]["result"].values():
            rows.extend(result)
    typed = [typed_row(r, BY_NAME["leads"].types) for r in rows]
    ids = [r["ID"] for r in typed]
    assert len(ids) == len(set(ids)) > 5000 and all(isinstance(i, int) for i in ids)


def test_the_portal_time_zone_is_read_from_a_recorded_time_block() -> None:
    block = recorded("batch_list_empty.json")["time"]
    check_portal_timezone(block, "Europe/Moscow")       # +03:00 on 1 June 2022: agrees
    with pytest.raises(ConfigurationError, match=r"UTC\+03:00.*America/New_York is UTC-04:00.*Europe/Moscow"):
        check_portal_timezone(block, "America/New_York")


def test_the_webhook_secret_never_appears_in_what_the_client_records() -> None:
    client = replayed_client(recorded("batch_list_empty.json"))
    client.batch({"a": "crm.lead.list?start=-1"})
    url, _ = client.session.sent[0]  # type: ignore[attr-defined]
    assert url == WEBHOOK + "batch"
    assert client.auth.redact(f"failed at {url}") == "failed at https://example.bitrix24.ru/rest/1/***/batch"


# Every recorded body, fed through the client as the answer to a call of the kind that produced it: single
# calls and batches both come back as the client's batch result or raise nothing the client did not expect.
ALL_RECORDED = sorted(p.name for p in RECORDED.glob("*.json"))


@pytest.mark.parametrize("name", ALL_RECORDED)
def test_every_recorded_answer_goes_through_the_client(name: str) -> None:
    response = recorded(name)
    bodies = response if isinstance(response, list) else [response]
    for body in bodies:
        result = body["result"]
        if isinstance(result, dict) and "result_time" in result:     # a batch answer
            commands = result["result"] if isinstance(result["result"], dict) else {}
            batch = replayed_client(body).batch({name: "crm.lead.list" for name in commands} or {"a": "x.y"})
            assert batch.results == commands
            assert batch.time.get("date_start", "").endswith("+03:00")
            assert batch.errors == (result["result_error"] if isinstance(result["result_error"], dict) else {})
        else:                                                          # a single call's answer, as a batch sees it
            time_block = body["time"]
            assert isinstance(time_block["processing"], float) and time_block["date_start"].endswith("+03:00")


def test_pipelines_from_crm_category_list_type_as_the_catalogue_says() -> None:
    entity = BY_NAME["pipelines"]
    rows = [typed_row(r, entity.types) for r in rows_of(entity, recorded("crm_category_list.json")["result"])]
    assert rows[0] == {"id": 0, "name": "Portal Shop", "sort": 100, "entityTypeId": 2, "isDefault": True}
    assert all(isinstance(r["id"], int) for r in rows) and len(rows) > 10


def test_tasks_recorded_with_string_ids_type_as_numbers() -> None:
    first, chained = recorded("get_all_tasks.json")
    entity = BY_NAME["tasks"]
    pages = [first["result"], *chained["result"]["result"].values()]
    rows = [typed_row(r, entity.types) for page in pages for r in rows_of(entity, page)]
    assert rows[0] == {"id": 8618, "status": 2, "group": [], "subStatus": "-1"}
    ids = [r[entity.id_key] for r in rows]
    assert len(ids) == len(set(ids)) > 1000 and all(isinstance(i, int) for i in ids)
    assert entity.row_key("CHANGED_DATE") == "changedDate" and "UF_CRM_TASK" in entity.select()


COLUMN_SHAPES: dict[str, list[list[Any]]] = {
    "id": [["1", "2", None, ""], [1, 2, None], ["1.5", "2"], [" 3", "4"], ["abc"], [True, "1"], [None, None], ["+5"],
           ["1_000"], [{}, "3"], [[], "4"], []],
    "money": [["10.5", "123.456", ""], ["12", None, "1e3"], [" 12"], [10.5, 3], ["-0.5"], ["abc"], ["0.005"],
              ["9999999999999999.99"], ["0.015", "0.025"]],
    "datetime": [["2026-03-19T19:00:00+03:00", "", None, "2026-03-19T19:00:00Z"], ["2026-03-19T19:00:00"],
                 ["2026-03-19T19:00:00.123456-05:00"], ["garbage"], [5], ["2026-03-19 19:00:00+03:00"]],
    "date": [["2026-03-19T19:00:00-05:00", "2026-03-20", ""], ["2026-03-19T23:30:00+03:00", None],
             ["2026-03-19T19:00:00"], ["2026-03-19T01:30:00+03:00"]],
    "yn": [["Y", "N", "", None, " y ", "1", "true", "x"], [True, False, None], ["Y", True]],
    "str": [["a", "", None], ["a", 5], [{"a": 1}, "b"], [[], "c"], [None]],
}


@pytest.mark.parametrize("kind", sorted(COLUMN_SHAPES))
def test_a_column_parsed_at_once_equals_its_values_converted_one_by_one(kind: str) -> None:
    for values in COLUMN_SHAPES[kind]:
        one_by_one = pa.array([CONVERTERS[kind](v) for v in values], type=ARROW_TYPES[kind])
        at_once = typed_column(values, kind)
        assert at_once.type == one_by_one.type and at_once.equals(one_by_one), (kind, values, at_once.to_pylist())
