"""Bounded concurrency for per-cluster workspace calls.

At ~200 ms per workspace call, reading or restarting 50 clusters one after another costs
~10 s; `map_bounded` runs such calls on at most `max_parallel` threads (the calls wait on
the network, so threads are enough) and gives back one `Outcome` per item **in input
order**, each holding either the value or the exception. One cluster's failure never loses
the others' results: callers decide what a failure means (e.g. `not_found` is "deleted").

Rate limits stay the workspace client's business: a 429 is retried there, honouring
`Retry-After` within its time budget, so the pool only bounds how many calls are in flight.
`DEFAULT_MAX_PARALLEL` matches the databricks-sdk's own connection pool (20 connections,
`pool_block=True` in `databricks/sdk/_base_client.py`): more threads would only queue for
a connection.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar, cast

from provisioner.clock import Clock, RealClock
from provisioner.databricks.ratelimit import TokenBucket
from provisioner.errors import ProvisionError
from provisioner.secret import mask

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_MAX_PARALLEL = 20
MAX_PARALLEL_LIMIT = 64
# Polls of many clusters together: below the 15 requests/s the Terraform provider allows
# itself by default (databricks-sdk-go `httpclient/api_client.go`), leaving room for others.
DEFAULT_POLL_RATE = 10.0


@dataclass(frozen=True)
class Outcome(Generic[T, R]):
    """What `fn(item)` gave: a value, or the exception it raised (never both)."""

    item: T
    value: R | None = None
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def __repr__(self) -> str:
        # A worker's exception may quote what it held; a repr ends up in logs and tracebacks.
        shown = f"error={_describe(self.error)!r}" if self.error is not None else f"value={self.value!r}"
        return mask(f"Outcome(item={self.item!r}, {shown})")


class CallBound:
    """At most `limit` workspace calls in flight, restarts first.

    While a restart is expected (`expect`, counted before its thread may even have started)
    or in flight, no other call takes a slot: with 50 clusters and 20 slots, the first reads
    of the clusters restarted first would otherwise take the slots the remaining restarts
    need, and under a workspace's rate limit they would take the requests a restart answered
    429 retries with — every restart issued late lengthens a rotation's revocation window.
    """

    def __init__(self, limit: int) -> None:
        self._free = max(1, limit)
        self._restarts = 0  # announced and not yet answered
        self._cond = threading.Condition()

    def expect(self, restarts: int = 1) -> None:
        with self._cond:
            self._restarts += restarts

    def cancel(self) -> None:
        """The run is stopping: expected restarts may never come, let the other calls go."""
        with self._cond:
            self._restarts = 0
            self._cond.notify_all()

    def restart(self) -> AbstractContextManager[None]:
        """A slot for one expected restart, before any other call waiting."""
        return self._slot(restart=True)

    def call(self) -> AbstractContextManager[None]:
        """A slot for any other call (a read, a listing), once every restart is answered."""
        return self._slot(restart=False)

    @contextmanager
    def _slot(self, *, restart: bool) -> Iterator[None]:
        with self._cond:
            while not self._free or (self._restarts and not restart):
                self._cond.wait()
            self._free -= 1
        try:
            yield
        finally:
            with self._cond:
                self._free += 1
                if restart:
                    self._restarts = max(0, self._restarts - 1)
                self._cond.notify_all()


def map_bounded(fn: Callable[[T], R], items: Iterable[T], *, max_parallel: int | None = None) -> list[Outcome[T, R]]:
    """`fn` over `items` with at most `max_parallel` calls in flight; outcomes in input order.

    `max_parallel` None means `DEFAULT_MAX_PARALLEL` (pass `env.databricks_max_parallel`:
    `databricks.max_parallel` in provision.yaml).

    Exceptions (`Exception` subclasses) are collected per item. Ctrl-C cancels what has not
    started and propagates; calls already in flight finish in their threads.
    """
    todo = list(items)
    bound = DEFAULT_MAX_PARALLEL if max_parallel is None else max_parallel
    workers = max(1, min(bound, len(todo)))
    if workers == 1:  # no thread for a single call (or a sequential setting)
        return [_call(fn, item) for item in todo]
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="workspace-call")
    try:
        futures: list[Future[Outcome[T, R]]] = [pool.submit(_call, fn, item) for item in todo]
        return [future.result() for future in futures]
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True)


def poll_all(
    probe: Callable[[T], R | None],
    items: Sequence[T],
    *,
    max_parallel: int | None = None,
    rate: float = DEFAULT_POLL_RATE,
    min_interval: float = 0.05,
    stop: threading.Event | None = None,
    clock: Clock | None = None,
) -> list[Outcome[T, R]]:
    """Probe every item again and again until its probe returns a result (not None) or raises.

    The waits of many clusters share one request budget: all probes together run at most
    `rate` per second (bursts of one second's worth) and at most `max_parallel` at a time,
    the pending item probed longest ago first, none twice within `min_interval`. With 50
    clusters restarting, each is probed every ~5 s; as they finish the others are probed
    more often, so the *last* one — which closes a wait such as the revocation window — is
    seen within ~1/rate s of finishing, at a request rate the workspace can take.

    Outcomes come back in input order. `stop` (or Ctrl-C) ends the polling: unfinished items
    get an `InterruptedError`. Probe timeouts are the probe's business (it knows the deadline).
    `clock` paces the budget and the spacing (the run's; a test's fake moves on its own sleeps).
    """
    todo = list(items)
    if not todo:
        return []
    stop = stop or threading.Event()
    clock = clock or RealClock()
    done: list[Outcome[T, R] | None] = [None] * len(todo)
    last = [float("-inf")] * len(todo)
    busy: set[int] = set()
    ready = threading.Condition()
    bucket = TokenBucket(rate, clock=clock)

    def claim() -> int | None:
        with ready:
            while not stop.is_set():
                idle = [i for i, d in enumerate(done) if d is None and i not in busy]
                if not idle:
                    if all(d is not None for d in done):
                        return None
                    ready.wait(0.5)  # every pending item is being probed by another thread
                    continue
                i = min(idle, key=last.__getitem__)
                due = last[i] + min_interval - clock.monotonic()
                if due > 0:
                    ready.release()  # the item is not due yet: sleep on the clock, not holding the others up
                    try:
                        clock.wait(stop, due)
                    finally:
                        ready.acquire()
                    continue
                busy.add(i)
                return i
            return None

    def worker() -> None:
        while (i := claim()) is not None:
            outcome: Outcome[T, R] | None = None
            if bucket.wait(stop):
                result = _call(probe, todo[i])
                if result.error is not None or result.value is not None:
                    outcome = cast(Outcome[T, R], result)
            with ready:
                busy.discard(i)
                last[i] = clock.monotonic()
                if outcome is not None:
                    done[i] = outcome
                ready.notify_all()

    workers = max(1, min(DEFAULT_MAX_PARALLEL if max_parallel is None else max_parallel, len(todo)))
    threads = [threading.Thread(target=worker, name="workspace-poll", daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(0.5)  # a join with a timeout keeps Ctrl-C deliverable
    finally:
        stop.set()
        with ready:
            ready.notify_all()
    return [
        d if d is not None else Outcome(item, error=InterruptedError("stopped before it finished"))
        for item, d in zip(todo, done, strict=True)
    ]


def _call(fn: Callable[[T], R], item: T) -> Outcome[T, R]:
    try:
        return Outcome(item, value=fn(item))
    except Exception as exc:
        return Outcome(item, error=exc)


def values_or_raise(outcomes: list[Outcome[T, R]], what: Callable[[T], str], action: str) -> list[R]:
    """The values in input order, or one ProvisionError naming *every* failed item.

    The message is built from each error's text, masked (SAS signatures, registered
    secrets): an exception from a worker thread is as likely to quote a token as any other.
    """
    failed = [o for o in outcomes if o.error is not None]
    if failed:
        lines = "; ".join(f"{what(o.item)}: {_describe(o.error)}" for o in failed)
        raise ProvisionError(mask(f"{action} failed for {len(failed)} of {len(outcomes)}: {lines}"))
    return [cast(R, o.value) for o in outcomes]


def _describe(error: Exception | None) -> str:
    return mask(str(error) or type(error).__name__)
