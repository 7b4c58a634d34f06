"""A token bucket, the sandbox's own: the workspace emulator's limit (429 + `Retry-After` over it)
and the stand-in provider throttling itself as the real provider's Go SDK does —
`rate.NewLimiter(15, 15)` by default (databricks-sdk-go `httpclient/api_client.go`,
`defaultRateLimitPerSeconds`; provider `docs/index.md`, `rate_limit`). A copy of the tool's
(provisioner/databricks/ratelimit.py), not an import: the emulator stands on its own.
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

    def wait(self, stop: threading.Event | None = None) -> bool:
        """Block until a token is taken (a client throttling itself); False if `stop` was set first."""
        while (delay := self.take()) > 0:
            if stop is not None and stop.wait(delay):
                return False
            if stop is None:
                time.sleep(delay)
        return True
