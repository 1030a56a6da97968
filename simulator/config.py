"""Configuration of a simulated portal: its data (scale, seed, clock) and its server behaviour."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

# Named sizes: deals in the portal. Everything else scales from the number of deals
# (about 10 activities per deal, 0.75 leads, 0.6 contacts, 0.2 companies).
SCALES: dict[str, int] = {"tiny": 120, "small": 2_000, "demo": 12_000, "large": 200_000, "huge": 1_000_000}


@dataclass(frozen=True)
class DataConfig:
    """What the generator produces. The same config and seed always give the same portal."""

    seed: int = 42
    deals: int = SCALES["small"]
    anchor: str = "2026-11-02T18:00:00"   # portal-local time when the generated history ends
    history_days: int = 365
    timezone: str = "Europe/Moscow"
    language: str = "ru"
    currency: str = "RUB"
    managers: int | None = None            # default grows with the portal: 8 .. 50

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def anchor_ts(self) -> int:
        local = datetime.fromisoformat(self.anchor)
        if local.tzinfo is None:
            local = local.replace(tzinfo=self.tz)
        return int(local.timestamp())

    @property
    def manager_count(self) -> int:
        if self.managers is not None:
            return self.managers
        return max(8, min(50, 8 + self.deals // 8_000))


@dataclass(frozen=True)
class Webhook:
    user_id: int
    secret: str
    scopes: tuple[str, ...] = ("crm", "user", "department", "telephony", "task")


@dataclass(frozen=True)
class OAuthApp:
    client_id: str
    client_secret: str
    scopes: tuple[str, ...] = ("crm", "user", "department", "telephony", "task")
    token_lifetime: int = 3600          # seconds of portal time an access token lives


@dataclass(frozen=True)
class Limits:
    """The cloud portal's limits (limits.md). Enterprise plans: rate 5, burst 250."""

    rate: float = 2.0                   # leaky bucket drain, requests per second
    burst: int = 50                     # bucket size
    operating_limit: float = 480.0      # seconds of server time per method per 10 minutes; 0 disables
    request_cap: float = 60.0           # a request running longer is cut off (504)
    rate_limit_status: int = 503        # older docs said 429
    plan_has_rest: bool = True          # False: every call answers 403 ACCESS_DENIED
    blocked: str = ""                   # "overload": 503 OVERLOAD_LIMIT; "payment": 401 PAYMENT_REQUIRED


@dataclass(frozen=True)
class CostModel:
    """Server time a call costs, reported in `time.operating` and optionally slept for real.

    Calibrated on the responses recorded on live portals (tests/fixtures/bitrix24-real): a 50-row list page
    took 0.03-0.045 s of server time (median of 150 batched pages), and a batch of 50 such pages 1.5-2.4 s of
    wall time. The model gives 0.037 s for a 50-row page of two fields and 0.065 s for thirty fields (wide
    selects cost more per row, as fast_bitrix24's issues report). Counting `total` on 2.4M rows took about
    50 s (huge-data.md).
    """

    per_call: float = 0.01
    per_row: float = 0.0005
    per_row_per_column: float = 0.00002
    per_counted_row: float = 0.00002
    per_skipped_row: float = 0.00001
    latency_scale: float = 0.0          # 1.0 sleeps the modelled server time for real


@dataclass(frozen=True)
class Faults:
    """Deterministic (by seed) fault injection, as shares of requests."""

    seed: int = 7
    rate_503: float = 0.0               # 503 QUERY_LIMIT_EXCEEDED out of turn
    rate_html: float = 0.0              # 502/504 with an HTML body from the gateway
    rate_drop: float = 0.0              # connection closed without an answer
    rate_slow: float = 0.0              # answer delayed by `slow_seconds`
    slow_seconds: float = 2.0
    moved_to: str | None = None         # portal renamed: other hosts answer 302 to this base URL

    @property
    def any(self) -> bool:
        return any((self.rate_503, self.rate_html, self.rate_drop, self.rate_slow))


def default_secret(seed: int) -> str:
    return hashlib.sha256(f"b24-simulator-{seed}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ServerConfig:
    data: DataConfig = field(default_factory=DataConfig)
    webhooks: tuple[Webhook, ...] = ()
    oauth_apps: tuple[OAuthApp, ...] = ()
    limits: Limits = field(default_factory=Limits)
    costs: CostModel = field(default_factory=CostModel)
    faults: Faults = field(default_factory=Faults)
    clock: str = "frozen"               # frozen: portal time moves only when advanced; real: it ticks
    unresolved_reference: str = "empty"  # batch `$result[...]` that resolves to nothing: "empty" or "keep"
    history_ids: str = "strings"        # crm.stagehistory.list ids: "strings" as recorded live, "numbers" as the docs

    def with_defaults(self) -> ServerConfig:
        hooks = self.webhooks or (Webhook(1, default_secret(self.data.seed)),)
        apps = self.oauth_apps or (OAuthApp("local.b24sim." + default_secret(self.data.seed)[:8],
                                            default_secret(self.data.seed + 1)),)
        return ServerConfig(self.data, hooks, apps, self.limits, self.costs, self.faults, self.clock,
                            self.unresolved_reference, self.history_ids)
