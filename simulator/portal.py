"""A running portal: its store, clock, credentials, limits, faults and live changes.

This is also the simulator's Python API: tests or scripts that host a `Portal` in-process call the
same operations the HTTP control interface (`/_sim/...`) exposes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
import time
from collections import Counter
from dataclasses import asdict, fields, replace
from pathlib import Path
from random import Random
from typing import Any
from zoneinfo import ZoneInfo

from b24wh_simulator.api import Api, Caller
from b24wh_simulator.config import CostModel, DataConfig, Faults, Limits, OAuthApp, ServerConfig
from b24wh_simulator.events import Events
from b24wh_simulator.limits import LeakyBucket, OperatingBudget
from b24wh_simulator.live import LivePortal
from b24wh_simulator.query import ApiError


class Portal:
    def __init__(self, store_path: str, config: ServerConfig) -> None:
        self.store_path = store_path
        self.config = config.with_defaults()
        self.db = sqlite3.connect(store_path, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode = WAL")
        self.data = DataConfig(**json.loads(self.meta("data_config")))
        self.tz = ZoneInfo(self.data.timezone)
        self.anchor = self.data.anchor_ts
        self.clock_shift = 0
        self.started = time.monotonic()
        self.limits = self.config.limits
        self.costs = self.config.costs
        self.faults = self.config.faults
        self.fault_rng = Random(self.faults.seed)
        self.buckets: dict[str, LeakyBucket] = {}
        self.budget = OperatingBudget(self.limits.operating_limit)
        self.events = Events(f"sim{self.data.seed:08d}.bitrix24.test")
        self.api = Api(self.db, self.tz, lambda: self.costs, self.budget, self.events,
                       lambda client_id: self.application_token(self.app(client_id)),
                       self.config.unresolved_reference, history_ids=self.config.history_ids)
        self.access_tokens: dict[str, tuple[OAuthApp, int, int]] = {}
        self.refresh_tokens: dict[str, tuple[OAuthApp, int, int]] = {}
        self.stats: Counter[str] = Counter()
        self._live: LivePortal | None = None

    def meta(self, key: str) -> str:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise ValueError(f"not a simulator store (no {key!r} in meta)")
        return str(row[0])

    # --- clock ---------------------------------------------------------------------------------------

    def now(self) -> int:
        """Portal time: the generated history ends at the anchor; a real clock then ticks on."""
        elapsed = time.monotonic() - self.started if self.config.clock == "real" else 0
        return int(self.anchor + self.clock_shift + elapsed)

    def advance(self, seconds: float) -> int:
        self.clock_shift += int(seconds)
        return self.now()

    # --- credentials ---------------------------------------------------------------------------------

    def webhook_url(self, base: str) -> str:
        hook = self.config.webhooks[0]
        return f"{base.rstrip('/')}/rest/{hook.user_id}/{hook.secret}/"

    def webhook_caller(self, user_id: int, secret: str) -> Caller:
        for hook in self.config.webhooks:
            if hook.user_id == user_id and secrets.compare_digest(hook.secret, secret):
                return Caller(f"hook:{hook.user_id}:{hook.secret[:4]}", hook.user_id, frozenset(hook.scopes))
        raise ApiError(401, "INVALID_CREDENTIALS", "Invalid request credentials")

    def token_caller(self, token: Any) -> Caller:
        if not token:
            raise ApiError(401, "NO_AUTH_FOUND", "Wrong authorization data")
        found = self.access_tokens.get(str(token))
        if found is None:
            raise ApiError(401, "invalid_token", "Unable to get application by token")
        app, user_id, expires = found
        if expires <= self.now():
            raise ApiError(401, "expired_token", "The access token provided has expired")
        return Caller(f"app:{app.client_id}", user_id, frozenset(app.scopes))

    def issue_tokens(self, client_id: str, user_id: int = 1) -> dict[str, Any]:
        """What an application receives when a user installs it (OAuth authorization_code step)."""
        app = self.app(client_id)
        return self._token_pair(app, user_id)

    def app(self, client_id: str) -> OAuthApp:
        for app in self.config.oauth_apps:
            if app.client_id == client_id:
                return app
        raise ApiError(401, "invalid_client", "Invalid client id or secret")

    def application_token(self, app: OAuthApp) -> str:
        """What the portal signs an application's event calls with (given to it when installed)."""
        return hmac.new(app.client_secret.encode(), b"application_token", hashlib.sha256).hexdigest()[:32]

    def _token_pair(self, app: OAuthApp, user_id: int) -> dict[str, Any]:
        access, refresh = secrets.token_hex(16), secrets.token_hex(16)
        expires = self.now() + app.token_lifetime
        self.access_tokens[access] = (app, user_id, expires)
        self.refresh_tokens[refresh] = (app, user_id, self.now() + 180 * 86_400)
        return {"access_token": access, "expires": expires, "expires_in": app.token_lifetime,
                "scope": ",".join(app.scopes), "domain": "oauth.bitrix.info", "server_endpoint":
                "https://oauth.bitrix.info/rest/", "status": "L", "client_endpoint": "", "member_id":
                f"sim{self.data.seed:08d}", "user_id": user_id, "refresh_token": refresh,
                "application_token": self.application_token(app)}

    def refresh(self, params: dict[str, Any]) -> dict[str, Any]:
        """The OAuth server's `grant_type=refresh_token` exchange; the old refresh token stops working."""
        if params.get("grant_type") != "refresh_token":
            raise ApiError(400, "invalid_request", "Unsupported grant_type")
        app = self.app(str(params.get("client_id", "")))
        if not secrets.compare_digest(app.client_secret, str(params.get("client_secret", ""))):
            raise ApiError(401, "invalid_client", "Invalid client id or secret")
        found = self.refresh_tokens.pop(str(params.get("refresh_token", "")), None)
        if found is None or found[0].client_id != app.client_id or found[2] <= self.now():
            raise ApiError(400, "invalid_grant", "Invalid refresh token")
        return self._token_pair(app, found[1])

    # --- limits and faults ---------------------------------------------------------------------------

    def admit(self, client: str) -> bool:
        bucket = self.buckets.get(client)
        if bucket is None or bucket.rate != self.limits.rate or bucket.burst != self.limits.burst:
            bucket = self.buckets[client] = LeakyBucket(self.limits.rate, self.limits.burst)
        return bucket.admit()

    def draw_fault(self) -> str | None:
        f = self.faults
        if not f.any:
            return None
        u = self.fault_rng.random()
        for name, share in (("503", f.rate_503), ("html", f.rate_html), ("drop", f.rate_drop),
                            ("slow", f.rate_slow)):
            if u < share:
                return name
            u -= share
        return None

    def html_status(self) -> int:
        return 502 if self.fault_rng.random() < 0.5 else 504

    def set_faults(self, **changes: Any) -> Faults:
        self.faults = _updated(self.faults, changes)
        self.fault_rng = Random(self.faults.seed)
        return self.faults

    def set_limits(self, **changes: Any) -> Limits:
        self.limits = _updated(self.limits, changes)
        self.budget.limit = self.limits.operating_limit
        self.buckets.clear()
        self.budget.windows.clear()
        return self.limits

    def set_costs(self, **changes: Any) -> CostModel:
        self.costs = _updated(self.costs, changes)
        return self.costs

    def reset(self) -> None:
        """Back to the generated portal as the server started it: its rows, clock, limits, costs, faults, OAuth
        tokens and request counters. Tests share one server process and reset it instead of starting another."""
        from b24wh_simulator.store import working_copy

        self.db.close()
        for suffix in ("-wal", "-shm"):
            Path(self.store_path + suffix).unlink(missing_ok=True)
        working_copy(self.data, Path(self.store_path))
        events = self.events        # its sending thread stays; its handlers go
        self.__init__(self.store_path, self.config)  # type: ignore[misc]
        events.clear()
        self.events = self.api.events = events

    # --- data ----------------------------------------------------------------------------------------

    def apply_changes(self, counts: dict[str, Any]) -> list[dict[str, Any]]:
        if self._live is None:
            self._live = LivePortal(self.db, self.data, self.now)
        changes = [c.as_dict() for c in self._live.apply(counts)]
        self.events.raise_changes(changes, self.now())
        return changes

    def status(self) -> dict[str, Any]:
        counts = {table: self.db.execute(f"SELECT count(*) FROM {table} WHERE is_deleted = 0").fetchone()[0]
                  for table in ("deals", "leads", "contacts", "companies", "activities", "invoices")}
        return {"now": self.now(), "clock": self.config.clock, "timezone": self.data.timezone,
                "data": asdict(self.data), "rows": counts, "limits": asdict(self.limits),
                "costs": asdict(self.costs), "faults": asdict(self.faults), "requests": dict(self.stats),
                "events": {"handlers": len(self.events.handlers), "sent": self.events.sent,
                           "failed": self.events.failed}}


def _updated(obj: Any, changes: dict[str, Any]) -> Any:
    known = {f.name for f in fields(obj)}
    unknown = set(changes) - known
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}; known: {sorted(known)}")
    return replace(obj, **changes)
