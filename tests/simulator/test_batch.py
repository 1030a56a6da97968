"""`batch`: at most 50 commands run in order, `$result[...]` substitution, halt, empty maps as `[]`."""

from __future__ import annotations

from typing import Any

from tests.conftest import Rest


def keyset_chain(count: int, method: str = "crm.deal.list") -> dict[str, str]:
    """The official SDK's fast export: each command filters `>ID` on the previous page's last ID."""
    cmd = {"p0": f"{method}?select[]=ID&order[ID]=ASC&filter[>ID]=0&start=-1"}
    for i in range(1, count):
        cmd[f"p{i}"] = f"{method}?select[]=ID&order[ID]=ASC&filter[>ID]=$result[p{i - 1}][49][ID]&start=-1"
    return cmd


def test_a_chained_keyset_batch_walks_consecutive_pages(rest: Rest) -> None:
    all_ids = [int(r["ID"]) for r in rest.all_rows("crm.deal.list", {"select": ["ID"]})]
    answer = rest.call("batch", {"halt": 1, "cmd": keyset_chain(5)})["result"]
    got = [int(r["ID"]) for i in range(5) for r in answer["result"][f"p{i}"]]
    assert got == all_ids[:250]
    assert answer["result_total"] == {f"p{i}": 0 for i in range(5)}
    assert answer["result_next"] == [] and answer["result_error"] == []


def test_a_reference_past_a_short_page_resolves_to_nothing(rest: Rest) -> None:
    answer = rest.call("batch", {"cmd": keyset_chain(8)})["result"]   # 300 deals: page 7 is short or empty
    pages = [answer["result"][f"p{i}"] for i in range(8)]
    short = next(i for i, page in enumerate(pages) if len(page) < 50)
    # `>ID` = "" after the short page: the classic filter matches nothing rather than restarting.
    assert all(page == [] for page in pages[short + 1:])


def test_halt_stops_at_the_first_error(rest: Rest) -> None:
    cmd = {"ok": "crm.deal.list?select[]=ID&start=-1", "bad": "crm.nosuch.method", "after": "user.current"}
    halted = rest.call("batch", {"halt": 1, "cmd": cmd})["result"]
    assert set(halted["result"]) == {"ok"} and set(halted["result_error"]) == {"bad"}
    assert halted["result_error"]["bad"]["error"] == "ERROR_METHOD_NOT_FOUND"
    assert "after" not in halted["result_time"]
    going_on = rest.call("batch", {"halt": 0, "cmd": cmd})["result"]
    assert set(going_on["result"]) == {"ok", "after"}


def test_all_commands_failing_gives_empty_arrays(rest: Rest) -> None:
    answer = rest.call("batch", {"cmd": {"a": "crm.nosuch", "b": "crm.nosuch2"}})["result"]
    assert answer["result"] == [] and answer["result_total"] == [] and answer["result_time"] == []
    assert set(answer["result_error"]) == {"a", "b"}


def test_commands_as_a_list_are_named_by_index(rest: Rest) -> None:
    answer = rest.call("batch", {"cmd": ["user.current", "department.get?ID=1"]})["result"]
    assert set(answer["result"]) == {"0", "1"}


def test_commands_past_the_50th_are_refused_one_by_one(rest: Rest) -> None:
    answer = rest.call("batch", {"cmd": {f"c{i}": "user.current" for i in range(53)}})["result"]
    assert sorted(answer["result"]) == sorted(f"c{i}" for i in range(50))
    assert answer["result_error"] == {f"c{i}": {"error": "ERROR_BATCH_LENGTH_EXCEEDED",
                                                "error_description": "Max batch length exceeded"}
                                      for i in (50, 51, 52)}


def test_percent_encoded_references_are_decoded_before_they_resolve(rest: Rest) -> None:
    """SDKs send `$result[...]` percent-encoded (b24pysdk): the portal decodes the command first."""
    from urllib.parse import quote

    plain = rest.call("batch", {"cmd": keyset_chain(3)})["result"]["result"]
    encoded = {name: text.replace(f"$result[p{i - 1}][49][ID]", quote(f"$result[p{i - 1}][49][ID]", safe=""))
               for i, (name, text) in enumerate(keyset_chain(3).items())}
    assert encoded["p1"].endswith("filter[>ID]=%24result%5Bp0%5D%5B49%5D%5BID%5D&start=-1")
    answer = rest.call("batch", {"cmd": encoded})["result"]["result"]
    assert answer == plain and len(answer["p2"]) == 50


def test_next_references_give_the_next_pages_start(rest: Rest) -> None:
    answer = rest.call("batch", {"cmd": {"first": "crm.deal.list?select[]=ID&order[ID]=ASC&start=0",
                                         "second": "crm.deal.list?select[]=ID&order[ID]=ASC&start=$next[first]"}}
                       )["result"]
    assert answer["result_next"]["first"] == 50
    first, second = answer["result"]["first"], answer["result"]["second"]
    assert len(second) == 50 and int(second[0]["ID"]) > int(first[-1]["ID"])


def test_batch_inside_batch_is_not_allowed(rest: Rest) -> None:
    answer = rest.call("batch", {"cmd": {"inner": "batch?cmd[a]=user.current"}})["result"]
    assert answer["result_error"]["inner"]["error"] == "ERROR_BATCH_METHOD_NOT_ALLOWED"


def test_batch_counts_as_one_request_for_the_bucket(fresh_portal: Any) -> None:
    fresh_portal.control.set_limits(rate=0.01, burst=3)
    hook = Rest(fresh_portal.webhook_url)
    answers = [hook.post("batch", {"cmd": {f"c{i}": "user.current" for i in range(50)}}) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 503]


def test_form_encoded_batch_with_nested_brackets(portal: Any) -> None:
    import requests

    body = ("halt=0&cmd[first]=crm.deal.list%3Fselect%5B%5D%3DID%26order%5BID%5D%3DASC%26start%3D-1"
            "&cmd[second]=crm.deal.list%3Fselect%5B%5D%3DID%26filter%5BID%5D%3D%24result%5Bfirst%5D%5B1%5D%5BID%5D")
    response = requests.post(portal.webhook_url + "batch", data=body,
                             headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=30)
    result = response.json()["result"]["result"]
    assert result["second"] == [result["first"][1]]
