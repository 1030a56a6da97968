"""The portal's limits: the request leaky bucket and the per-method operating-time budget.

Both follow limits.md: every HTTP request (a whole `batch` included) adds one to a bucket that drains
at `rate` per second and refuses requests once it would exceed `burst`; each method's server time is
summed per webhook or application over ten one-minute buckets, and once the sum exceeds the limit the
next call to that method is refused until the oldest bucket drops out (`operating_reset_at`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

WINDOW_MINUTES = 10


@dataclass
class LeakyBucket:
    rate: float
    burst: int
    level: float = 0.0
    updated: float = field(default_factory=time.monotonic)

    def admit(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        self.level = max(0.0, self.level - (now - self.updated) * self.rate)
        self.updated = now
        if self.level + 1 > self.burst:
            return False
        self.level += 1
        return True


@dataclass
class _MethodWindow:
    minutes: dict[int, float] = field(default_factory=dict)      # minute -> seconds spent
    first_call: dict[int, float] = field(default_factory=dict)   # minute -> first call's unix time

    def trim(self, now: float) -> None:
        oldest = int(now // 60) - WINDOW_MINUTES + 1
        for minute in [m for m in self.minutes if m < oldest]:
            del self.minutes[minute]
            del self.first_call[minute]

    def total(self) -> float:
        return sum(self.minutes.values())

    def reset_at(self) -> int | None:
        if not self.first_call:
            return None
        return int(self.first_call[min(self.first_call)] + WINDOW_MINUTES * 60)


class OperatingBudget:
    """Per (identity, method) sliding ten-minute sums of server time, in wall-clock seconds."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.windows: dict[tuple[str, str], _MethodWindow] = {}

    def _window(self, identity: str, method: str, now: float) -> _MethodWindow:
        window = self.windows.setdefault((identity, method), _MethodWindow())
        window.trim(now)
        return window

    def blocked(self, identity: str, method: str, now: float | None = None) -> bool:
        if self.limit <= 0:
            return False
        now = time.time() if now is None else now
        return self._window(identity, method, now).total() > self.limit

    def spend(self, identity: str, method: str, seconds: float,
              now: float | None = None) -> tuple[float, int | None]:
        """Adds a call's server time; returns (`operating`, `operating_reset_at`)."""
        now = time.time() if now is None else now
        window = self._window(identity, method, now)
        minute = int(now // 60)
        window.minutes[minute] = window.minutes.get(minute, 0.0) + seconds
        window.first_call.setdefault(minute, now)
        return window.total(), window.reset_at()
