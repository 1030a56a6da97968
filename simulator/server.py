"""The HTTP face of the portal (aiohttp): REST URLs, the OAuth server, and the control interface.

- `/rest/{user_id}/{secret}/{method}[.json]`: inbound webhooks
- `/rest/{method}[.json]` with `auth=`: OAuth applications
- `/oauth/token/`: the OAuth server's token refresh (shaped like oauth.bitrix.info)
- `/_sim/...`: control (clock, live changes, outbound webhooks, faults, limits, costs, ground truth, statistics),
  for the holder of the first webhook's secret (header `X-Simulator-Secret`)

Order of checks for a REST call, as a portal answers: portal move (302), injected faults, the request
bucket (503), the method (404, before any authentication; names are case-insensitive), credentials (401),
plan (403), a block on demand (503 OVERLOAD_LIMIT, 401 PAYMENT_REQUIRED), scope (401), operating time (429).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from aiohttp import web

from b24wh_simulator import truth, wire
from b24wh_simulator.api import Caller, Outcome
from b24wh_simulator.catalogue import METHODS
from b24wh_simulator.live import CHANGE_KINDS
from b24wh_simulator.portal import Portal
from b24wh_simulator.query import ApiError

log = logging.getLogger("simulator")

PORTAL_KEY = web.AppKey("portal", Portal)
LIVE_KEY = web.AppKey("live_task", dict)

_GATEWAY_PAGES = {
    502: "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1>"
         "</center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
    504: "<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n<center><h1>504 Gateway Time-out"
         "</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
}


# Blocks a portal can be put under on demand (`limits.blocked`), answered to every call.
BLOCKS = {"overload": ApiError(503, "OVERLOAD_LIMIT", "REST API is blocked due to overload"),
          "payment": ApiError(401, "PAYMENT_REQUIRED", "Payment required")}


def json_response(status: int, body: Any) -> web.Response:
    return web.Response(status=status, body=wire.dumps(body), content_type="application/json", charset="utf-8")


def error_response(err: ApiError) -> web.Response:
    return json_response(err.status, err.body())


def gateway_page(status: int) -> web.Response:
    return web.Response(status=status, text=_GATEWAY_PAGES[status], content_type="text/html")


async def read_params(request: web.Request) -> dict[str, Any]:
    """GET query strings, form bodies in PHP bracket syntax, and JSON bodies; the body wins."""
    params = wire.parse_php_query(request.query_string)
    if request.can_read_body:
        raw = await request.text()
        if raw.strip():
            if request.content_type == "application/json" or raw.lstrip().startswith("{"):
                try:
                    body = json.loads(raw)
                except ValueError:
                    raise ApiError(400, "INVALID_REQUEST", "Invalid JSON in the request body") from None
                if isinstance(body, dict):
                    params.update(body)
            else:
                params.update(wire.parse_php_query(raw))
    return params


def method_name(raw: str) -> str:
    return raw.removesuffix(".json")


async def rest_call(request: web.Request, authenticate: Callable[[dict[str, Any]], Caller]) -> web.StreamResponse:
    portal = request.app[PORTAL_KEY]
    portal.stats["http_requests"] += 1
    moved = portal.faults.moved_to
    if moved and not moved.rstrip("/").endswith("//" + request.host):
        portal.stats["redirected"] += 1
        raise web.HTTPFound(moved.rstrip("/") + request.path_qs)
    fault = portal.draw_fault()
    if fault is not None:
        portal.stats[f"fault_{fault}"] += 1
    if fault == "drop":
        if request.transport is not None:
            request.transport.abort()
        raise asyncio.CancelledError
    if fault == "slow":
        await asyncio.sleep(portal.faults.slow_seconds)
    if fault == "503":
        return error_response(ApiError(503, "QUERY_LIMIT_EXCEEDED", "Too many requests"))
    if fault == "html":
        return gateway_page(portal.html_status())
    peer = request.remote or "local"
    if not portal.admit(peer):
        portal.stats["throttled"] += 1
        return error_response(ApiError(portal.limits.rate_limit_status, "QUERY_LIMIT_EXCEEDED", "Too many requests"))
    name = method_name(request.match_info["method"]).lower()
    try:
        if name not in METHODS:
            raise ApiError(404, "ERROR_METHOD_NOT_FOUND", "Method not found!")
        params = await read_params(request)
        caller = authenticate(params)
        if not portal.limits.plan_has_rest:
            raise ApiError(403, "ACCESS_DENIED", "REST API is available only on commercial plans")
        if portal.limits.blocked in BLOCKS:
            raise BLOCKS[portal.limits.blocked]
    except ApiError as err:
        portal.stats[f"status_{err.status}"] += 1
        return error_response(err)
    params.pop("auth", None)
    outcome: Outcome = portal.api.call(name, params, caller)
    portal.stats[f"method:{name}"] += 1
    portal.stats[f"status_{outcome.status}"] += 1
    portal.stats["server_ms"] += round(outcome.cost * 1000)   # modelled server time, for benchmarks
    scale = portal.costs.latency_scale
    if outcome.cost > portal.limits.request_cap:
        await asyncio.sleep(portal.limits.request_cap * scale)
        portal.stats["cut_off"] += 1
        return gateway_page(504)
    if scale > 0 and outcome.cost > 0:
        await asyncio.sleep(outcome.cost * scale)
    return json_response(outcome.status, outcome.body)


async def webhook_handler(request: web.Request) -> web.StreamResponse:
    portal = request.app[PORTAL_KEY]
    user_id = int(request.match_info["user_id"])
    secret = request.match_info["secret"]
    return await rest_call(request, lambda _params: portal.webhook_caller(user_id, secret))


async def oauth_handler(request: web.Request) -> web.StreamResponse:
    portal = request.app[PORTAL_KEY]
    return await rest_call(request, lambda params: portal.token_caller(params.get("auth")))


async def token_handler(request: web.Request) -> web.Response:
    portal = request.app[PORTAL_KEY]
    try:
        return json_response(200, portal.refresh(await read_params(request)))
    except ApiError as err:
        return error_response(err)


# --- control interface ------------------------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


CONTROL_SECRET_HEADER = "X-Simulator-Secret"


def control(fn: Callable[[Portal, dict[str, Any], web.Request], Any]) -> Handler:
    """Wraps a control operation: JSON in, JSON out, bad input answered with 400 and the reason. The caller
    proves it owns the portal with the secret of its first webhook in the X-Simulator-Secret header (the
    control interface hands out credentials and ground truth, so it is never open); anything else is 401."""

    async def handler(request: web.Request) -> web.StreamResponse:
        portal: Portal = request.app[PORTAL_KEY]
        if not secrets.compare_digest(request.headers.get(CONTROL_SECRET_HEADER, "").encode(),
                                      portal.config.webhooks[0].secret.encode()):
            return json_response(401, {"error": f"the control interface needs the portal's webhook secret in the "
                                                f"{CONTROL_SECRET_HEADER} header"})
        body: dict[str, Any] = {}
        if request.can_read_body:
            text = await request.text()
            body = json.loads(text) if text.strip() else {}
        try:
            result = fn(portal, body, request)
            if asyncio.iscoroutine(result):
                result = await result
        except (ValueError, TypeError, ApiError) as err:
            return json_response(400, {"error": str(err)})
        return json_response(200, result)

    return handler


def _status(portal: Portal, body: dict[str, Any], request: web.Request) -> dict[str, Any]:
    status = portal.status()
    status["webhook_url"] = portal.webhook_url(f"{request.scheme}://{request.host}")
    status["oauth_apps"] = [{"client_id": a.client_id, "client_secret": a.client_secret}
                            for a in portal.config.oauth_apps]
    return status


def _outbound(portal: Portal, body: dict[str, Any], request: web.Request) -> dict[str, Any]:
    """An outbound webhook, as an administrator sets one up: a handler URL and its events; answers with the
    application token the portal signs its calls with."""
    handler, events = str(body.get("handler", "")), list(body.get("events") or [])
    if not handler.startswith(("http://", "https://")) or not events:
        raise ValueError("an outbound webhook needs a handler URL and a list of events")
    return {"handler": handler, "events": events, "application_token": portal.events.outbound(handler, events)}


def _clock(portal: Portal, body: dict[str, Any], request: web.Request) -> dict[str, Any]:
    now = portal.advance(float(body.get("advance", 0)))
    return {"now": now, "iso": wire.format_datetime(now, portal.tz)}


def _changes(portal: Portal, body: dict[str, Any], request: web.Request) -> dict[str, Any]:
    if "advance" in body:
        portal.advance(float(body.pop("advance")))
    return {"now": portal.now(), "changes": portal.apply_changes(body)}


async def _live(portal: Portal, body: dict[str, Any], request: web.Request) -> dict[str, Any]:
    """Starts (or with `{"stop": true}` stops) a background stream of changes at a chosen rate."""
    state = request.app[LIVE_KEY]
    task = state.pop("task", None)
    if task is not None:
        task.cancel()
    if body.get("stop"):
        return {"live": False}
    interval = float(body.get("interval_seconds", 5))
    mix = dict(body.get("changes", {"new_activities": 1, "stage_moves": 1}))
    unknown = set(mix) - set(CHANGE_KINDS)
    if unknown:
        raise ValueError(f"unknown change kinds {sorted(unknown)}")

    async def run() -> None:
        while True:
            await asyncio.sleep(interval)
            portal.apply_changes(mix)

    state["task"] = asyncio.get_running_loop().create_task(run())
    return {"live": True, "interval_seconds": interval, "changes": mix}


def _settings(kind: str) -> Callable[[Portal, dict[str, Any], web.Request], dict[str, Any]]:
    def apply(portal: Portal, body: dict[str, Any], request: web.Request) -> dict[str, Any]:
        setter = {"faults": portal.set_faults, "limits": portal.set_limits, "costs": portal.set_costs}[kind]
        return asdict(setter(**body))
    return apply


def _authorize(portal: Portal, body: dict[str, Any], request: web.Request) -> dict[str, Any]:
    return portal.issue_tokens(str(body.get("client_id", portal.config.oauth_apps[0].client_id)),
                               int(body.get("user_id", 1)))


def _truth(portal: Portal, body: dict[str, Any], request: web.Request) -> dict[str, Any]:
    return truth.compute(portal.db, portal.tz, portal.now())


def _reset(portal: Portal, body: dict[str, Any], request: web.Request) -> dict[str, Any]:
    task = request.app[LIVE_KEY].pop("task", None)
    if task is not None:
        task.cancel()
    portal.reset()
    return {"now": portal.now(), "rows": portal.status()["rows"]}


def _stats_reset(portal: Portal, body: dict[str, Any], request: web.Request) -> dict[str, Any]:
    portal.stats.clear()
    return {"requests": {}}


def build_app(portal: Portal) -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[PORTAL_KEY] = portal
    app[LIVE_KEY] = {}
    app.router.add_route("*", r"/rest/{user_id:\d+}/{secret}/{method}", webhook_handler)
    app.router.add_route("*", "/rest/{method}", oauth_handler)
    app.router.add_route("*", "/oauth/token/", token_handler)
    app.router.add_get("/_sim/status", control(_status))
    app.router.add_post("/_sim/clock", control(_clock))
    app.router.add_post("/_sim/changes", control(_changes))
    app.router.add_post("/_sim/live", control(_live))
    for kind in ("faults", "limits", "costs"):
        app.router.add_put(f"/_sim/{kind}", control(_settings(kind)))
    app.router.add_post("/_sim/oauth/authorize", control(_authorize))
    app.router.add_post("/_sim/outbound", control(_outbound))
    app.router.add_get("/_sim/truth", control(_truth))
    app.router.add_post("/_sim/stats/reset", control(_stats_reset))
    app.router.add_post("/_sim/reset", control(_reset))
    return app
