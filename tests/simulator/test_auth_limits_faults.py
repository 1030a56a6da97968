"""Credentials, the portal's limits and injected faults, each answered with the real error."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from b24wh_simulator.client import SimulatorProcess
from tests.conftest import Rest, example, portal_options


def test_a_wrong_secret_or_user_id_is_401_invalid_credentials(portal: Any) -> None:
    prefix, secret = portal.webhook_url.rstrip("/").rsplit("/", 1)
    for wrong in (f"{prefix}/not-the-secret/", f"{prefix.rsplit('/', 1)[0]}/777/{secret}/"):
        response = requests.post(wrong + "crm.deal.list", json={}, timeout=30)
        assert response.status_code == 401
        assert response.json() == example("error.INVALID_CREDENTIALS.json")["response"]


def test_an_unknown_method_is_404_before_authentication(portal: Any) -> None:
    wrong = portal.webhook_url.rstrip("/").rsplit("/", 1)[0] + "/not-the-secret/"
    response = requests.post(wrong + "crm.deal.nosuchmethod", json={}, timeout=30)
    assert response.status_code == 404
    assert response.json() == example("error.ERROR_METHOD_NOT_FOUND.json")["response"]


def test_method_names_are_case_insensitive_as_on_a_portal(rest: Rest) -> None:
    assert rest.call("crm.deal.List", {"start": -1})["result"] == rest.call("crm.deal.list", {"start": -1})["result"]
    inside = rest.call("batch", {"cmd": {"a": "CRM.DEAL.LIST?start=-1"}})["result"]
    assert len(inside["result"]["a"]) == 50 and inside["result_error"] == []


@pytest.mark.parametrize(("block", "status", "code"), [("overload", 503, "OVERLOAD_LIMIT"),
                                                        ("payment", 401, "PAYMENT_REQUIRED")])
def test_a_portal_can_be_blocked_on_demand(fresh_portal: Any, block: str, status: int, code: str) -> None:
    fresh_portal.control.set_limits(blocked=block)
    response = Rest(fresh_portal.webhook_url).post("crm.deal.list")
    assert response.status_code == status and response.json()["error"] == code
    fresh_portal.control.set_limits(blocked="")
    assert Rest(fresh_portal.webhook_url).post("crm.deal.list").status_code == 200


def test_a_missing_scope_is_401_insufficient_scope() -> None:
    with SimulatorProcess(**portal_options(deals=60, scopes="crm,user")) as sim:
        hook = Rest(sim.webhook_url)
        response = hook.post("voximplant.statistic.get")
        assert response.status_code == 401
        assert response.json() == example("error.insufficient_scope.json")["response"]
        batch = hook.call("batch", {"cmd": {"calls": "voximplant.statistic.get", "me": "user.current"}})["result"]
        assert batch["result_error"]["calls"] == {"error": "insufficient_scope", "error_description": ""}
        assert hook.call("scope")["result"] == ["crm", "user"]


def test_a_plan_without_rest_is_403_access_denied(fresh_portal: Any) -> None:
    fresh_portal.control.set_limits(plan_has_rest=False)
    response = Rest(fresh_portal.webhook_url).post("crm.deal.list")
    assert response.status_code == 403 and response.json()["error"] == "ACCESS_DENIED"


def test_oauth_tokens_expire_and_refresh(fresh_portal: Any) -> None:
    app = fresh_portal.oauth
    tokens = fresh_portal.control.authorize()
    url = app["rest_url"] + "crm.deal.list"
    assert requests.post(url, json={"auth": tokens["access_token"], "start": -1}, timeout=30).status_code == 200
    assert requests.get(url, params={"auth": tokens["access_token"]}, timeout=30).status_code == 200
    forged = requests.post(url, json={"auth": "forged"}, timeout=30)
    assert forged.status_code == 401
    assert forged.json() == {"error": "invalid_token", "error_description": "Unable to get application by token"}
    fresh_portal.control.advance(3601)
    expired = requests.post(url, json={"auth": tokens["access_token"]}, timeout=30)
    assert expired.status_code == 401
    assert expired.json() == example("error.expired_token.json")["response"]
    renewed = requests.get(app["token_url"], params={
        "grant_type": "refresh_token", "client_id": app["client_id"], "client_secret": app["client_secret"],
        "refresh_token": tokens["refresh_token"]}, timeout=30).json()
    assert {"access_token", "refresh_token", "expires", "expires_in", "member_id", "scope"} <= set(renewed)
    assert requests.post(url, json={"auth": renewed["access_token"]}, timeout=30).status_code == 200
    reused = requests.get(app["token_url"], params={
        "grant_type": "refresh_token", "client_id": app["client_id"], "client_secret": app["client_secret"],
        "refresh_token": tokens["refresh_token"]}, timeout=30)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    bad_client = requests.get(app["token_url"], params={
        "grant_type": "refresh_token", "client_id": app["client_id"], "client_secret": "wrong",
        "refresh_token": renewed["refresh_token"]}, timeout=30)
    assert bad_client.status_code == 401 and bad_client.json()["error"] == "invalid_client"


def test_the_leaky_bucket_refuses_bursts_then_drains(fresh_portal: Any) -> None:
    fresh_portal.control.set_limits(rate=2, burst=10)
    hook = Rest(fresh_portal.webhook_url)
    statuses = [hook.post("user.current").status_code for _ in range(14)]
    assert statuses[:10] == [200] * 10 and 503 in statuses[10:]
    refused = next(r for r in (hook.post("user.current") for _ in range(3)) if r.status_code == 503)
    assert refused.json() == example("error.QUERY_LIMIT_EXCEEDED.json")["response"]
    time.sleep(1.1)    # two requests drained
    assert hook.post("user.current").status_code == 200


def test_enterprise_limits_and_the_old_429_status_are_configurable(fresh_portal: Any) -> None:
    # Enterprise's burst of 250; the drain is slowed to one request in 10 s so that a slow machine, taking
    # seconds over the 260 requests, still sees the bucket full.
    fresh_portal.control.set_limits(rate=0.1, burst=250, rate_limit_status=429)
    hook = Rest(fresh_portal.webhook_url)
    statuses = [hook.post("user.current").status_code for _ in range(260)]
    assert statuses[:250] == [200] * 250 and set(statuses[250:]) <= {200, 429} and statuses[250:].count(429) >= 8


def test_operating_time_blocks_one_method_and_reports_its_reset(fresh_portal: Any) -> None:
    fresh_portal.control.set_limits(operating_limit=1.0)
    fresh_portal.control.set_costs(per_call=0.3, per_row=0, per_row_per_column=0, per_counted_row=0)
    hook = Rest(fresh_portal.webhook_url)
    answers = [hook.post("crm.deal.list", {"start": -1}) for _ in range(5)]
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 429]
    times = [a.json()["time"] for a in answers[:4]]
    assert [round(t["operating"], 2) for t in times] == [0.3, 0.6, 0.9, 1.2]
    assert times[0]["operating_reset_at"] == times[3]["operating_reset_at"] > time.time()
    assert answers[4].json() == example("error.OPERATION_TIME_LIMIT.json")["response"]
    assert hook.post("crm.lead.list", {"start": -1}).status_code == 200, "other methods keep working"
    inside = hook.call("batch", {"cmd": {"d": "crm.deal.list?start=-1", "l": "crm.lead.list?start=-1"}})["result"]
    assert inside["result_error"]["d"]["error"] == "OPERATION_TIME_LIMIT" and "l" in inside["result"]


def test_counting_total_on_a_big_table_costs_more_than_keyset(fresh_portal: Any) -> None:
    hook = Rest(fresh_portal.webhook_url)
    keyset = hook.call("crm.activity.list", {"select": ["ID"], "start": -1})["time"]["processing"]
    counted = hook.call("crm.activity.list", {"select": ["ID"], "start": 500})["time"]["processing"]
    wide = hook.call("crm.activity.list", {"select": ["*"], "start": -1})["time"]["processing"]
    assert counted > keyset * 1.2 and wide > keyset


def test_requests_over_the_time_cap_are_cut_off(fresh_portal: Any) -> None:
    fresh_portal.control.set_costs(per_counted_row=1.0)   # counting rows becomes absurdly slow
    response = Rest(fresh_portal.webhook_url).post("crm.deal.list", {"start": 0})
    assert response.status_code == 504 and response.headers["Content-Type"].startswith("text/html")


def test_latency_scale_makes_the_server_really_slow(fresh_portal: Any) -> None:
    fresh_portal.control.set_costs(per_call=0.4, latency_scale=1.0)
    started = time.monotonic()
    Rest(fresh_portal.webhook_url).call("user.current")
    assert time.monotonic() - started >= 0.4


@pytest.mark.parametrize("fault", ["rate_503", "rate_html", "rate_drop", "rate_slow"])
def test_injected_faults(fresh_portal: Any, fault: str) -> None:
    fresh_portal.control.set_faults(**{fault: 1.0, "slow_seconds": 0.5})
    url = fresh_portal.webhook_url + "user.current"
    if fault == "rate_drop":
        with pytest.raises(requests.ConnectionError):
            requests.post(url, timeout=10)
        return
    started = time.monotonic()
    response = requests.post(url, timeout=10)
    if fault == "rate_503":
        assert response.status_code == 503 and response.json()["error"] == "QUERY_LIMIT_EXCEEDED"
    elif fault == "rate_html":
        assert response.status_code in (502, 504) and "<html>" in response.text
        with pytest.raises(ValueError):
            response.json()
    else:
        assert response.status_code == 200 and time.monotonic() - started >= 0.5


def test_faults_are_deterministic_by_seed(fresh_portal: Any) -> None:
    def sequence() -> list[int]:
        fresh_portal.control.set_faults(seed=3, rate_503=0.3, rate_html=0.2)
        return [requests.post(fresh_portal.webhook_url + "user.current", timeout=10).status_code for _ in range(30)]

    first, second = sequence(), sequence()
    assert first == second and len(set(first)) >= 2


def test_a_renamed_portal_answers_302_to_its_new_domain(fresh_portal: Any) -> None:
    new_base = fresh_portal.base_url.replace("127.0.0.1", "localhost")
    fresh_portal.control.set_faults(moved_to=new_base)
    old = requests.post(fresh_portal.webhook_url + "crm.deal.list", json={"select": ["ID"], "start": -1},
                        allow_redirects=False, timeout=10)
    assert old.status_code == 302 and old.headers["Location"].startswith(new_base + "/rest/")
    again = requests.post(old.headers["Location"], json={"select": ["ID"], "start": -1}, timeout=10)
    assert again.status_code == 200 and set(again.json()["result"][0]) == {"ID"}


def test_unknown_control_settings_are_refused(fresh_portal: Any) -> None:
    response = fresh_portal.control.session.put(fresh_portal.base_url + "/_sim/faults", json={"rate_boom": 1},
                                                timeout=10)
    assert response.status_code == 400 and "rate_boom" in response.json()["error"]


@pytest.mark.parametrize("secret", [None, "", "wrongsecret"])
def test_the_control_interface_needs_the_portal_secret(fresh_portal: Any, secret: str | None) -> None:
    headers = {} if secret is None else {"X-Simulator-Secret": secret}
    for verb, path in (("GET", "/status"), ("GET", "/truth"), ("POST", "/oauth/authorize"), ("PUT", "/limits")):
        response = requests.request(verb, fresh_portal.base_url + "/_sim" + path, json={}, headers=headers, timeout=10)
        assert response.status_code == 401, path
        assert "X-Simulator-Secret" in response.json()["error"]
        assert fresh_portal.webhook_url.rstrip("/").rsplit("/", 1)[1] not in response.text
    assert fresh_portal.control.status()["webhook_url"] == fresh_portal.webhook_url
