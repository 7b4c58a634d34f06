"""A token bucket: the workspace emulator's per-workspace limit, and the stand-in provider's own.

Both sides of a real workspace limit requests: the workspace answers 429 + `Retry-After`
(workspace_emulator.py) and the Terraform provider's Go SDK throttles itself before each
request — `rate.NewLimiter(15, 15)` by default (databricks-sdk-go `httpclient/api_client.go`,
`defaultRateLimitPerSeconds`; provider `docs/index.md`, `rate_limit`).
"""

from __future__ import annotations

import threading
import time


class TokenBucket:
    """`rate` requests per second with bursts of up to `burst` (default: one second's worth)."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.burst = rate if burst is None else burst
        self._tokens = self.burst
        self._at = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> float:
        """Take a token and return 0, or take none and return the seconds until one is due."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / self.rate

    def wait(self) -> None:
        """Block until a token is taken (a client throttling itself)."""
        while (delay := self.take()) > 0:
            time.sleep(delay)
