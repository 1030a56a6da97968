"""Client-side accounting of the portal's two limits, so that throttling is rare, not routine.

- `RequestBucket` mirrors the portal's leaky bucket: it waits before a request would overflow it.
- `OperatingLedger` sums each method's server time over a sliding ten minutes (from `time.operating`
  where the portal reports it, else from `time.processing` of each call) and pauses that method
  alone until its oldest time drops out; other methods keep going.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from pipelines.bitrix24 import settings


class RequestBucket:
    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.rate = rate
        self.capacity = max(1.0, burst * settings.BUCKET_SAFETY)
        self.level = 0.0
        self.clock = clock
        self.sleep = sleep
        self.updated = clock()
        self.lock = threading.Lock()

    def _drain(self) -> None:
        now = self.clock()
        self.level = max(0.0, self.level - (now - self.updated) * self.rate)
        self.updated = now

    def acquire(self) -> None:
        """Blocks until one more request fits in the bucket, then counts it."""
        while True:
            with self.lock:
                self._drain()
                if self.level + 1 <= self.capacity:
                    self.level += 1
                    return
                wait = (self.level + 1 - self.capacity) / self.rate
            self.sleep(wait)

    def overflowed(self) -> None:
        """The portal said the bucket is full (another app on the IP shares it): assume so."""
        with self.lock:
            self._drain()
            self.level = self.capacity


class OperatingLedger:
    def __init__(self, limit: float = settings.OPERATING_LIMIT, clock: Callable[[], float] = time.time) -> None:
        self.budget = limit * settings.OPERATING_SAFETY   # 0: no budget known (self-hosted portals)
        self.clock = clock
        self.spent: dict[str, deque[tuple[float, float]]] = {}
        self.reported: dict[str, tuple[float, float]] = {}   # method -> (operating, when it stops counting)
        self.blocked_until: dict[str, float] = {}
        self.lock = threading.Lock()

    def record(self, method: str, processing: float, operating: float | None = None,
               reset_at: float | None = None) -> None:
        with self.lock:
            now = self.clock()
            self.spent.setdefault(method, deque()).append((now, processing))
            # The highest report stands until it expires: commands of one batch report in any order
            # (recorded: 2.70 s, then 0 and 0 for the same method), and a low one never hides a high one.
            if operating is not None and operating >= self._reported(method, now)[0]:
                self.reported[method] = (operating, reset_at if reset_at is not None else now
                                         + settings.OPERATING_WINDOW)

    def blocked(self, method: str, reset_at: float | None = None) -> None:
        """The portal refused the method (429 OPERATION_TIME_LIMIT): pause it until its reset."""
        with self.lock:
            now = self.clock()
            known = self.reported[method][1] if method in self.reported else None
            until = reset_at or known or 0.0
            self.blocked_until[method] = until if until > now else now + 60.0

    def wait_for(self, method: str) -> float:
        """Seconds this method should wait before its next call (0 = go)."""
        with self.lock:
            now = self.clock()
            until = self.blocked_until.get(method, 0.0)
            if until > now:
                return until - now
            window = self.spent.get(method)
            if window is None or self.budget <= 0:
                return 0.0
            while window and window[0][0] < now - settings.OPERATING_WINDOW:
                window.popleft()
            estimated = sum(seconds for _, seconds in window)
            operating, reset_at = self._reported(method, now)
            if max(estimated, operating) < self.budget:
                return 0.0
            if reset_at is not None and operating >= self.budget:
                return reset_at - now
            return max(0.0, window[0][0] + settings.OPERATING_WINDOW - now) if window else 0.0

    def _reported(self, method: str, now: float) -> tuple[float, float | None]:
        """The portal's last standing report of this method's operating time, and when it stops counting."""
        operating, until = self.reported.get(method, (0.0, 0.0))
        return (operating, until) if until > now else (0.0, None)
