"""`python -m b24wh_simulator` (also `b24wh simulator`): run a local Bitrix24 portal over HTTP.

Prints one line `READY {json}` on stdout once it serves (base URL, webhook URL, control URL, OAuth
application), then human-readable hints on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import ssl
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from aiohttp import web

from b24wh_simulator.config import SCALES, CostModel, DataConfig, Faults, Limits, ServerConfig, Webhook, default_secret
from b24wh_simulator.portal import Portal
from b24wh_simulator.server import build_app
from b24wh_simulator.store import working_copy

SCOPES = "crm,user,department,telephony,task"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="b24wh simulator", description="Run a local Bitrix24 portal (REST API).")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: localhost only)")
    p.add_argument("--port", type=int, default=8024, help="port (0 picks a free one)")
    p.add_argument("--tls-cert", type=Path, help="serve HTTPS with this certificate (PEM; with --tls-key)")
    p.add_argument("--tls-key", type=Path, help="the certificate's private key (PEM)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--scale", choices=sorted(SCALES, key=SCALES.__getitem__), default="small",
                      help="portal size by name: " + ", ".join(f"{k}={v} deals" for k, v in SCALES.items()))
    size.add_argument("--deals", type=int, help="portal size in deals (overrides --scale)")
    p.add_argument("--seed", type=int, default=42, help="random seed of the generated data")
    p.add_argument("--anchor", default="now",
                   help="portal-local time the generated history ends at (ISO, or 'now' for the current hour)")
    p.add_argument("--history-days", type=int, default=365)
    p.add_argument("--timezone", default="Europe/Moscow")
    p.add_argument("--language", choices=("ru", "en"), default="ru")
    p.add_argument("--currency", default="RUB")
    p.add_argument("--managers", type=int, help="sales managers (default grows with the portal, 8..50)")
    p.add_argument("--clock", choices=("real", "frozen"), default="real",
                   help="real: portal time ticks from the anchor; frozen: it moves only when advanced")
    p.add_argument("--store", type=Path, help="keep the portal in this file across runs (default: a temp copy)")
    p.add_argument("--webhook-user", type=int, default=1)
    p.add_argument("--secret", help="webhook secret (default: derived from the seed)")
    p.add_argument("--scopes", default=SCOPES, help=f"webhook scopes (default {SCOPES})")
    limits = p.add_argument_group("limits")
    limits.add_argument("--enterprise", action="store_true", help="Enterprise plan: 5 requests/s, burst 250")
    limits.add_argument("--rate", type=float, help="leaky bucket drain, requests/s (default 2)")
    limits.add_argument("--burst", type=int, help="leaky bucket size (default 50)")
    limits.add_argument("--operating-limit", type=float, default=480.0,
                        help="server seconds per method per 10 minutes (0 disables)")
    limits.add_argument("--rate-limit-status", type=int, choices=(429, 503), default=503)
    limits.add_argument("--blocked", choices=("", "overload", "payment"), default="",
                        help="answer every call with 503 OVERLOAD_LIMIT or 401 PAYMENT_REQUIRED")
    p.add_argument("--history-ids", choices=("strings", "numbers"), default="strings",
                   help="crm.stagehistory.list ids as strings (live portals, 2022-2023) or numbers (the 2024 docs)")
    limits.add_argument("--latency-scale", type=float, default=0.0,
                        help="sleep this share of the modelled server time (1.0 = as slow as a real portal)")
    faults = p.add_argument_group("faults (shares of requests, deterministic by --fault-seed)")
    faults.add_argument("--fault-503", type=float, default=0.0)
    faults.add_argument("--fault-html", type=float, default=0.0, help="502/504 with an HTML body")
    faults.add_argument("--fault-drop", type=float, default=0.0, help="connection dropped without an answer")
    faults.add_argument("--fault-slow", type=float, default=0.0)
    faults.add_argument("--slow-seconds", type=float, default=2.0)
    faults.add_argument("--fault-seed", type=int, default=7)
    faults.add_argument("--moved-to", help="portal renamed: answer 302 to this base URL from any other host")
    p.add_argument("--verbose", action="store_true")
    return p


def anchor_value(raw: str, timezone: str) -> str:
    if raw != "now":
        return raw
    local = datetime.now(ZoneInfo(timezone)).replace(minute=0, second=0, microsecond=0, tzinfo=None)
    return local.isoformat()


def config_from(args: argparse.Namespace) -> ServerConfig:
    data = DataConfig(seed=args.seed, deals=args.deals or SCALES[args.scale],
                      anchor=anchor_value(args.anchor, args.timezone), history_days=args.history_days,
                      timezone=args.timezone, language=args.language, currency=args.currency, managers=args.managers)
    rate = args.rate if args.rate is not None else (5.0 if args.enterprise else 2.0)
    burst = args.burst if args.burst is not None else (250 if args.enterprise else 50)
    hook = Webhook(args.webhook_user, args.secret or default_secret(args.seed),
                   tuple(s.strip() for s in args.scopes.split(",") if s.strip()))
    return ServerConfig(
        data=data, webhooks=(hook,), clock=args.clock,
        limits=Limits(rate=rate, burst=burst, operating_limit=args.operating_limit,
                      rate_limit_status=args.rate_limit_status, blocked=args.blocked),
        history_ids=args.history_ids,
        costs=CostModel(latency_scale=args.latency_scale),
        faults=Faults(seed=args.fault_seed, rate_503=args.fault_503, rate_html=args.fault_html,
                      rate_drop=args.fault_drop, rate_slow=args.fault_slow, slow_seconds=args.slow_seconds,
                      moved_to=args.moved_to),
    ).with_defaults()


async def serve(config: ServerConfig, store: Path, host: str, port: int,
                tls: tuple[Path, Path] | None = None) -> None:
    portal = Portal(str(store), config)
    runner = web.AppRunner(build_app(portal), access_log=None)
    await runner.setup()
    context = None
    if tls is not None:   # HTTPS, as cloud portals serve: clients that only speak https (b24pysdk) can call it
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*tls)
    site = web.TCPSite(runner, host, port, ssl_context=context)
    await site.start()
    bound = runner.addresses[0][1]
    base = f"{'https' if tls else 'http'}://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{bound}"
    app = config.oauth_apps[0]
    ready = {"base_url": base, "webhook_url": portal.webhook_url(base), "control_url": f"{base}/_sim",
             "timezone": config.data.timezone,
             "oauth": {"client_id": app.client_id, "client_secret": app.client_secret,
                       "rest_url": f"{base}/rest/", "token_url": f"{base}/oauth/token/"},
             "store": str(store), "rows": portal.status()["rows"]}
    print("READY " + json.dumps(ready), flush=True)
    print(f"Bitrix24 simulator serving {sum(ready['rows'].values())} CRM rows at {base}\n"
          f"  webhook URL:  {ready['webhook_url']}\n"
          f"  control API:  {ready['control_url']}/status (header X-Simulator-Secret: the webhook secret)\n"
          f"  use it:       BITRIX24_WEBHOOK_URL={ready['webhook_url']}", file=sys.stderr, flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM (how `SimulatorProcess` stops the server) unwinds like Ctrl-C, so the working copy is removed."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr)
    config = config_from(args)
    print(f"Preparing a portal of {config.data.deals} deals (seed {config.data.seed})...", file=sys.stderr,
          flush=True)
    with tempfile.TemporaryDirectory(prefix="b24sim-") as tmp:
        store = args.store if args.store is not None else Path(tmp) / "portal.sqlite3"
        if args.store is None or not args.store.exists():
            working_copy(config.data, store)
        with contextlib.suppress(KeyboardInterrupt):
            tls = (args.tls_cert, args.tls_key) if args.tls_cert else None
            asyncio.run(serve(config, store, args.host, args.port, tls))
    return 0
