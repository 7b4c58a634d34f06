"""The one clock a run reads and waits on, injectable so that tests move time instead of sleeping.

Modelled on databricks-sdk-py's `databricks/sdk/clock.py` (`Clock` with `time()`/`sleep()`,
`RealClock`), which its `retries.py` (`retried(clock=…)`, `poll(clock=…)`) and its
`Config(clock=…)` take; its tests' `FakeClock` (`tests/clock.py`) advances time on `sleep`. Ours
adds what our waits need beyond the SDK's:
- `monotonic()` for deadlines and spacing (wall time may jump under NTP);
- `wait(event, seconds)`: a sleep that a stop event (Ctrl-C, a run ending) cuts short.

Ours has the SDK's two methods (`time`, `sleep`), so the run's clock is also the one the SDK's own
429/5xx retries sleep on (`databricks.identity.open_workspace`); the AEP client's retries sleep
on it too (`aep/http.py`).

`FakeClock` is the tests' clock (as the SDK's `tests/clock.py`): time stands still until someone
sleeps, then jumps by the sleep; `at(t, action)` runs an action when time first reaches `t` — a
barrier expressed in time, not a real wait — and `follow(moved)` lets an emulator's records age
with it (the sandbox keeps its own time: it imports nothing of ours). Several threads may sleep on
one fake: each sleep advances the shared time by its own length (time only moves forward), so a
wait of N threads passes fake time up to N times faster than real time would; a test states what
it waits for, never how long it took.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (deadlines, intervals)."""
        ...

    def time(self) -> float:
        """Seconds since the epoch (what is recorded or compared with a service's times)."""
        ...

    def sleep(self, seconds: float) -> None: ...

    def wait(self, event: threading.Event, seconds: float) -> bool:
        """Sleep up to `seconds`, ending early once `event` is set; whether it is set."""
        ...


class RealClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def wait(self, event: threading.Event, seconds: float) -> bool:
        return event.wait(seconds)


class FakeClock:
    """Time that moves only when someone sleeps (for tests; thread-safe)."""

    def __init__(self, start: float = 1_000.0, wall: float = 1_800_000_000.0) -> None:
        self._lock = threading.Lock()
        self._now = start
        self._wall_offset = wall - start
        self._actions: list[tuple[float, Callable[[], None]]] = []
        self._followers: list[Callable[[float], None]] = []
        self.sleeps: list[float] = []  # every sleep asked for, in order

    def monotonic(self) -> float:
        with self._lock:
            return self._now

    def time(self) -> float:
        with self._lock:
            return self._now + self._wall_offset

    def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds), slept=True)

    def wait(self, event: threading.Event, seconds: float) -> bool:
        if event.is_set():
            return True
        self.sleep(seconds)
        return event.is_set()

    def at(self, when: float, action: Callable[[], None]) -> None:
        """Run `action` (in the sleeping thread) once monotonic time reaches `when`."""
        with self._lock:
            self._actions.append((when, action))
            self._actions.sort(key=lambda a: a[0])
        self.advance(0.0)  # already due: run it now

    def follow(self, moved: Callable[[float], None]) -> None:
        """Call `moved(seconds)` whenever time moves: something else that lives on this time too
        (a test ages an emulator's records by as much, so its clock and ours agree)."""
        with self._lock:
            self._followers.append(moved)

    def advance(self, seconds: float, *, slept: bool = False) -> None:
        """Move time forward by `seconds`, running the actions that fall due on the way (outside
        the clock's lock: an action may start or release another thread that reads the clock)."""
        with self._lock:
            if slept:
                self.sleeps.append(seconds)
            target = self._now + seconds
            followers = list(self._followers)
        if seconds > 0:
            for moved in followers:
                moved(seconds)
        while True:
            with self._lock:
                if not self._actions or self._actions[0][0] > target:
                    self._now = max(self._now, target)
                    return
                when, action = self._actions.pop(0)
                self._now = max(self._now, when)
            action()
