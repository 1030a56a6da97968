"""The REST client against a portal's answers: pacing on reported operating time, blocked portals, and
credentials refused the way live portals refuse them."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests

from b24wh_simulator.client import SimulatorProcess
from pipelines.bitrix24.auth import OAuthAuth, WebhookAuth
from pipelines.bitrix24.client import Bitrix24Client
from pipelines.bitrix24.errors import AuthError, PortalUnavailable
from pipelines.bitrix24.pipeline import load


def test_the_client_pauses_a_method_before_the_portal_refuses_it(fresh_portal: Any) -> None:
    fresh_portal.control.set_limits(operating_limit=2.0)
    fresh_portal.control.set_costs(per_call=0.3, per_row=0, per_row_per_column=0, per_counted_row=0)
    client = Bitrix24Client(WebhookAuth.from_url(fresh_portal.webhook_url), rate=100, burst=100, operating_limit=2.0)
    sent = 0
    while client.wait_for("crm.deal.list") == 0 and sent < 20:    # what the batch scheduler checks first
        batch = client.batch({"a": "crm.deal.list?start=-1&select[]=ID", "b": "crm.lead.list?start=-1&select[]=ID"})
        assert batch.errors == {}, "never refused: the client stopped first"
        sent += 1
    reported = batch.time  # the batch's own block; the commands' blocks fed the ledger
    assert sent == 6, "0.3 s a call against 85 % of a 2 s budget: the sixth call reaches 1.8 s"
    pause = client.wait_for("crm.deal.list")
    reset_at = client.ledger.reported["crm.deal.list"][1]
    assert pause == pytest.approx(reset_at - time.time(), abs=2) and 500 < pause <= 600, "until the portal's reset"
    assert client.wait_for("crm.lead.list") > 0 and "operating" in reported
    assert fresh_portal.control.requests_served().get("status_429", 0) == 0


def test_an_overloaded_portal_is_backed_off_then_reported_in_one_line(fresh_portal: Any, tmp_path: Any) -> None:
    fresh_portal.control.set_limits(blocked="overload")
    started = time.monotonic()
    with pytest.raises(PortalUnavailable) as failed:
        load(tmp_path / "warehouse.duckdb", credentials=fresh_portal.webhook_url, progress="log")
    message = str(failed.value)
    assert "OVERLOAD_LIMIT" in message and "\n" not in message and message.count("Bitrix24 portal") == 1
    assert fresh_portal.control.requests_served()["http_requests"] == 3, "three tries, with a pause between"
    assert time.monotonic() - started < 20


def test_a_portal_whose_plan_lapsed_is_one_clear_line_and_no_retry(fresh_portal: Any, tmp_path: Any) -> None:
    fresh_portal.control.set_limits(blocked="payment")
    fresh_portal.control.reset_stats()
    with pytest.raises(AuthError, match=r"PAYMENT_REQUIRED.*plan must include the REST API"):
        load(tmp_path / "warehouse.duckdb", credentials=fresh_portal.webhook_url, progress="log")
    assert fresh_portal.control.requests_served()["http_requests"] == 1


def test_a_missing_scope_is_never_taken_for_an_expired_token() -> None:
    """401 insufficient_scope (as live portals answer it) ends the call; only expired_token renews a token."""

    class Refusing(requests.Session):
        def post(self, url: Any, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
            response = requests.Response()
            response.status_code = 401
            response._content = json.dumps({"error": "insufficient_scope", "error_description": "The request "
                                            "requires higher privileges than provided by the webhook token"}).encode()
            return response

    auth = OAuthAuth("https://example.bitrix24.ru", "app", "secret", "refresh", access_token="token")
    renewals: list[bool] = []
    auth.refresh = lambda: renewals.append(True) or True  # type: ignore[method-assign]
    client = Bitrix24Client(auth, rate=100, burst=100)
    client.session = Refusing()
    with pytest.raises(AuthError, match="insufficient_scope"):
        client.batch({"calls": "voximplant.statistic.get"})
    assert renewals == []


def test_a_refused_oauth_renewal_says_where_the_credentials_are_set(portal: SimulatorProcess) -> None:
    """The portal's OAuth server refusing the application (a wrong client secret) is one line naming where this
    portal's credentials are set, never the secret."""
    app = portal.oauth
    where = "PORTALS__NORTH__CREDENTIALS or [portals.north.credentials] in .dlt/secrets.toml"
    auth = OAuthAuth(portal.base_url, app["client_id"], "not-the-secret", "refresh", token_url=app["token_url"],
                     set_at=where)
    with pytest.raises(AuthError) as refused:
        auth.refresh()
    assert str(refused.value).startswith("Bitrix24 OAuth refresh failed (invalid_client): ")
    assert str(refused.value).endswith(f"where the credentials are set: {where}")
    assert "not-the-secret" not in str(refused.value)
