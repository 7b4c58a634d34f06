"""A token bucket: requests per second, with bursts.

Our own status polls share a request budget through it (provisioner/databricks/parallel.py
`poll_all`), and `pace` spaces a client's calls. The sandbox has its own copy
(provisioner/sandbox/ratelimit.py): the emulator does not import the product.
"""

from __future__ import annotations

import threading
from typing import Any

from provisioner.clock import Clock, RealClock


class TokenBucket:
    """`rate` requests per second with bursts of up to `burst` (default: one second's worth)."""

    def __init__(self, rate: float, burst: float | None = None, clock: Clock | None = None) -> None:
        self.rate = rate
        self.burst = rate if burst is None else burst
        self.clock = clock or RealClock()
        self._tokens = self.burst
        self._at = self.clock.monotonic()
        self._lock = threading.Lock()

    def take(self) -> float:
        """Take a token and return 0, or take none and return the seconds until one is due."""
        with self._lock:
            now = self.clock.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            # A wait of exactly the computed delay may refill to 1 less a rounding error.
            if self._tokens >= 1 - 1e-9:
                self._tokens = max(0.0, self._tokens - 1)
                return 0.0
            return (1 - self._tokens) / self.rate

    def wait(self, stop: threading.Event | None = None) -> bool:
        """Block until a token is taken (a client throttling itself); False if `stop` was set first."""
        while (delay := self.take()) > 0:
            if stop is not None and self.clock.wait(stop, delay):
                return False
            if stop is None:
                self.clock.sleep(delay)
        return True


def pace(api_client: Any, rate: float, clock: Clock | None = None) -> None:
    """At most `rate` requests per second from this client, evenly spaced (bursts of one).

    `rate` is the workspace's limit as the user states it to the SDK (`rate_limit`,
    `DATABRICKS_RATE_LIMIT`; the Terraform provider's Go SDK honours the same setting,
    databricks-sdk-py reads it and applies nothing). A workspace over its limit answers 429
    with a whole-second `Retry-After`, and the SDK sleeps it plus up to 1 s of jitter
    (`databricks/sdk/retries.py`): a rotation's restarts sent faster than the limit come in
    bursts a second or two apart and issue well below it. Spaced 1/rate apart they are never
    refused, so N restarts issue in (N - 1)/rate — what a rotation's window cannot do without.
    Calls of every kind queue here in arrival order; the rotation's restarts come first
    because nothing else is let into flight while one is pending (`parallel.CallBound`).
    """
    bucket = TokenBucket(rate, burst=1, clock=clock)
    call = api_client.do

    def do(*args: Any, **kwargs: Any) -> Any:
        bucket.wait()
        return call(*args, **kwargs)

    api_client.do = do
