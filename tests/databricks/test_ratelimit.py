"""The token bucket and `pace` on the run's clock: spacing and bursts are exact in fake time, and
nothing here sleeps."""

from __future__ import annotations

import threading
from typing import Any

from provisioner.clock import FakeClock
from provisioner.databricks.ratelimit import TokenBucket, pace


def test_a_burst_is_taken_at_once_then_tokens_come_at_the_rate() -> None:
    clock = FakeClock(start=0.0)
    bucket = TokenBucket(rate=4, clock=clock)
    assert [bucket.take() for _ in range(4)] == [0.0] * 4  # one second's worth at once
    assert bucket.take() == 0.25
    clock.sleep(0.25)
    assert bucket.take() == 0.0
    clock.sleep(10)  # idle: the bucket refills to its burst, no further
    assert [bucket.take() for _ in range(5)] == [0.0] * 4 + [0.25]


def test_wait_sleeps_until_a_token_is_due_and_a_stop_ends_it() -> None:
    clock = FakeClock(start=0.0)
    bucket = TokenBucket(rate=2, burst=1, clock=clock)
    assert bucket.wait() and clock.sleeps == []
    assert bucket.wait() and clock.sleeps == [0.5]
    stop = threading.Event()
    stop.set()
    assert bucket.wait(stop) is False  # a run stopping takes no token
    clock.sleep(0.5)
    assert bucket.wait(stop)  # a token is free: taken without waiting, stopped or not


class _ApiClient:
    """What `pace` wraps: an object with `do` (the SDK's ApiClient), here recording when it is called."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.calls: list[float] = []

    def do(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(self.clock.monotonic())
        return {}


def test_pace_spaces_every_call_one_over_the_rate_apart() -> None:
    """A stated limit of 10/s: 25 calls go out 0.1 s apart (the first at once), N calls in (N - 1)/10 s."""
    clock = FakeClock(start=0.0)
    api = _ApiClient(clock)
    pace(api, 10, clock)
    for _ in range(25):
        api.do("POST", "/api/2.1/clusters/restart")
    gaps = [round(b - a, 9) for a, b in zip(api.calls, api.calls[1:], strict=False)]
    assert api.calls[0] == 0.0 and gaps == [0.1] * 24
