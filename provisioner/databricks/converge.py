"""After an apply or a rotation's write, make every running managed cluster actually use the
current SAS token.

Writing the token is not enough for AEP's refresh-revokes-at-once semantics:
- inline mode: the provider `edit`s a running cluster, which restarts it, but returns before
  the restart finishes — the old process may still be serving with the revoked token;
- secret_scope mode: the tool overwrites the secret in place (provisioner.sas.secret_value)
  and nothing restarts at all, because `{{secrets/…}}` references are resolved only when a
  cluster starts.
So: restart running clusters that started before the new token was in place, then wait
until every cluster that is (re)starting is RUNNING. Terminated clusters are left alone:
they pick the current configuration up at their next start.

"Started before" compares the clusters service's `last_restarted_time` with the secrets
service's `last_updated_timestamp` — two services, two clocks, and a field that may lag the
state it describes. So that cannot make us loop or lie:
- at most one restart per cluster per run; after it, the cluster is judged by what the
  restart did (a state other than RUNNING observed after the call, or a changed start
  time), never by comparing the two clocks again;
- a restart that shows no effect is reported with the facts, not repeated;
- TERMINATED/ERROR during the wait is reported with its `termination_reason`;
- clusters are handled in parallel (bounded), each with its own outcome, so one cluster's
  failure never hides another's result; progress is printed per cluster; one deadline.

Only a workspace client and cluster ids come in: this module knows nothing of commands.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, TypeVar

from provisioner.clock import Clock, RealClock
from provisioner.console import Console
from provisioner.databricks.cluster_state import cluster_gone, last_start_ms, secret_updated_ms, termination_text
from provisioner.databricks.converge_report import ClusterOutcome, ConvergeError, ConvergeReport
from provisioner.databricks.moving import MovingClusters
from provisioner.databricks.parallel import DEFAULT_MAX_PARALLEL, DEFAULT_POLL_RATE, CallBound
from provisioner.databricks.ratelimit import TokenBucket
from provisioner.databricks.workspace import WorkspaceClient, WorkspaceError, said
from provisioner.errors import ProvisionError

TRANSITIONAL = frozenset({"PENDING", "RESTARTING", "RESIZING"})
TERMINAL = frozenset({"TERMINATED", "ERROR"})
# After our restart call, how long a cluster may still look untouched (RUNNING, same start
# time) before we say the restart had no visible effect. Databricks shows RESTARTING at once.
NO_EFFECT_GRACE_SECONDS = 30.0
PROGRESS_EVERY_SECONDS = 15.0
T = TypeVar("T")
_MAX_WAITERS = 512  # threads that only sleep between polls; calls in flight are bounded apart
_READ_AGAIN = "read again"  # internal: a `known` cluster's restart was refused; never reported


@dataclass(frozen=True)
class Freshness:
    """When is a RUNNING cluster still on the old configuration? (Used once per cluster.)

    - when the caller saw the clusters before changing them (`seen_starts`, e.g. rotate's
      pre-flight): it has not (re)started since;
    - secret_scope: it (re)started before the secret's current value was written.

    The secret's timestamp is one more call (`secrets/list`): it is read in the background
    and waited for only when `seen_starts` cannot decide, so a rotation's restarts do not
    wait for it inside the revocation window.
    """

    secret_ms_read: Future[int | None] | None = None
    seen_starts: Mapping[str, int] = field(default_factory=dict)

    @property
    def secret_ms(self) -> int | None:
        return None if self.secret_ms_read is None else self.secret_ms_read.result()

    def seen_stale(self, name: str, info: Mapping[str, Any]) -> bool:
        """Stale by what the caller saw (decided without a call)."""
        return name in self.seen_starts and last_start_ms(info) <= self.seen_starts[name]

    def stale(self, name: str, info: Mapping[str, Any]) -> bool:
        if self.seen_stale(name, info):
            return True
        secret_ms = self.secret_ms
        return secret_ms is not None and last_start_ms(info) < secret_ms


def converge_clusters(
    client: WorkspaceClient,
    cluster_ids: Mapping[str, str],
    console: Console,
    *,
    secret: tuple[str, str] | None = None,
    seen_starts: Mapping[str, int] | None = None,
    known: Mapping[str, Mapping[str, Any]] | None = None,
    timeout: float = 1800.0,
    retry_hint: str = "rerun `provision apply`",
    max_parallel: int | None = None,
    polls: TokenBucket | None = None,
    clock: Clock | None = None,
) -> ConvergeReport:
    """Restart (once) what runs on the old token and wait for every (re)starting cluster.

    `secret` is the (scope, key) the clusters reference in secret_scope mode. `known`: clusters
    as the caller read them just before its change, when nothing but that change touched them
    since (a rotation's secret write): one the caller saw RUNNING, with the start it gave in
    `seen_starts`, is restarted without being read again — one round trip less inside the
    revocation window — and before any read is made (`parallel.CallBound`); a restart refused
    with INVALID_STATE (it stopped meanwhile) sends it through the read-first path. `polls`: the
    request budget the waits' polls share (default `parallel.DEFAULT_POLL_RATE` per second, on
    `clock`). `clock`: what the waits, the deadline and the polls' spacing read (the run's).
    Raises ConvergeError naming every cluster that did not make it (the others still converged).
    """
    if not cluster_ids:
        return ConvergeReport()
    fresh = Freshness(None, dict(seen_starts or {}))
    bound = DEFAULT_MAX_PARALLEL if max_parallel is None else max_parallel
    worker = _Worker(client, console, fresh, timeout, restart=True, max_parallel=bound, polls=polls, clock=clock)
    worker.known = dict(known or {})
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="converge-secret") as reader:
        worker.restart_first(cluster_ids)  # before the secret's read too: it is not needed for these
        try:
            if secret is not None:
                read = reader.submit(worker.call, secret_updated_ms, client, *secret)  # within the bound too
                worker.fresh = Freshness(read, worker.fresh.seen_starts)
            return _run_all(worker, cluster_ids, retry_hint)
        finally:
            worker.calls.cancel()  # announced restarts that never came must not hold the secret's read


def wait_running(
    client: WorkspaceClient,
    clusters: Mapping[str, str],
    console: Console,
    timeout: float,
    *,
    retry_hint: str = "rerun `provision apply`",
    clock: Clock | None = None,
) -> ConvergeReport:
    """Wait until every cluster (already starting) is RUNNING; never restarts anything."""
    worker = _Worker(client, console, Freshness(), timeout, restart=False, clock=clock)
    return _run_all(worker, clusters, retry_hint)


def _run_all(worker: _Worker, cluster_ids: Mapping[str, str], retry_hint: str) -> ConvergeReport:
    """Like `databricks.parallel.map_bounded`, but Ctrl-C also ends the waits in flight at once.

    Every cluster waits in a thread of its own — a restart takes minutes and a wait costs
    nothing, while a pool of `max_parallel` would serialise the restarts in batches — and
    what is bounded is the calls: at most `max_parallel` in flight, polls within one
    request budget (`parallel.DEFAULT_POLL_RATE`).
    """
    report = ConvergeReport()
    items = sorted(cluster_ids.items())
    worker.moving.expect(len(items))
    pool = ThreadPoolExecutor(max_workers=max(1, min(len(items), _MAX_WAITERS)), thread_name_prefix="converge")
    try:
        futures = {pool.submit(worker.one, name, cid): (name, cid) for name, cid in items}
        wait(futures)
        for future, (name, cid) in futures.items():
            exc = future.exception()
            if exc is None:
                report.outcomes.append(future.result())
            elif isinstance(exc, ProvisionError):
                report.outcomes.append(ClusterOutcome(name, cid, "failed", str(exc)))
            else:
                raise exc  # a bug: the handler reports it
    except BaseException:
        worker.stop.set()  # Ctrl-C: the waits end at their next poll
        worker.calls.cancel()  # restarts announced for waits that will not run
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    report.outcomes.sort(key=lambda o: o.name)
    if report.failed:
        parts = [f"{o.name} ({o.cluster_id}) {o.detail}" for o in report.failed]
        raise ConvergeError(
            f"{len(report.failed)} of {len(items)} cluster(s) not running on the current configuration: "
            + "; ".join(parts)
            + f" — {retry_hint}",
            report,
        )
    return report


@dataclass
class _Watch:
    """What one wait observed."""

    info: dict[str, Any] | None = None
    outcome: ClusterOutcome | None = None  # set when the wait ended otherwise than RUNNING
    saw_transition: bool = False
    confirmed: bool = False  # read once after it left the listing of clusters in motion
    alone: bool = False  # the only cluster the last listing showed in motion


class _Worker:
    def __init__(
        self,
        client: WorkspaceClient,
        console: Console,
        fresh: Freshness,
        timeout: float,
        *,
        restart: bool,
        max_parallel: int = DEFAULT_MAX_PARALLEL,
        polls: TokenBucket | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.client = client
        self.clock = clock or RealClock()
        self.console = console
        self.fresh = fresh
        self.restart = restart
        self.started = self.clock.monotonic()
        self.timeout = timeout
        self.deadline = self.started + timeout
        self.stop = threading.Event()
        self.calls = CallBound(max_parallel)
        self.polls = polls or TokenBucket(DEFAULT_POLL_RATE, clock=self.clock)
        self.moving = MovingClusters(client, self.call, self.polls, self.stop, self.clock)
        self.known: dict[str, Mapping[str, Any]] = {}
        self.first: set[str] = set()  # restarted without a read of ours; announced to `calls`

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """A workspace call within the bound on calls in flight."""
        with self.calls.call():
            return fn(*args)

    def restart_first(self, names: Iterable[str]) -> None:
        """Announce the restarts made without a read (`known`) to the call bound before any call:
        no read takes a slot they need. Only for the waits `_run_all` starts at once (the first
        `_MAX_WAITERS` by name): a read must not wait on a restart whose wait cannot start."""
        for name in sorted(names)[:_MAX_WAITERS]:
            known = self.known.get(name)
            if known is not None and known.get("state") == "RUNNING" and self.fresh.seen_stale(name, known):
                self.first.add(name)
        self.calls.expect(len(self.first))

    def one(self, name: str, cid: str) -> ClusterOutcome:
        if name in self.first:
            why = "it started before the new SAS token was in place"
            outcome = self._restart_once(name, cid, self.known[name], why, expected=True)
            if outcome.result != _READ_AGAIN:
                return outcome
        info = self._get(name, cid)
        if isinstance(info, ClusterOutcome):
            return info
        state = str(info.get("state", ""))
        if state in ("TERMINATED", "TERMINATING"):
            return ClusterOutcome(name, cid, "terminated", "gets the current configuration at its next start")
        if state == "ERROR":
            return ClusterOutcome(name, cid, "failed", f"is in ERROR: {termination_text(info)}")
        if state == "RUNNING" and not (self.restart and self.fresh.stale(name, info)):
            return ClusterOutcome(name, cid, "running")
        if state in TRANSITIONAL:
            self.console.info(f"{name} ({cid}): {state}, waiting for it to run")
            watch = self._wait(name, cid, restart_from=None)
            if watch.outcome is not None:
                return watch.outcome
            assert watch.info is not None
            if not (self.restart and self.fresh.stale(name, watch.info)):
                self._ok(name, "RUNNING on the current configuration")
                return ClusterOutcome(name, cid, "waited")
            info, why = watch.info, "it was starting when the SAS secret was updated"
        else:
            why = "it started before the new SAS token was in place"
        return self._restart_once(name, cid, info, why)

    def _restart_once(
        self, name: str, cid: str, info: Mapping[str, Any], why: str, *, expected: bool = False
    ) -> ClusterOutcome:
        before = last_start_ms(info)
        if not expected:
            self.calls.expect()
        try:
            with self.calls.restart():
                self.console.info(f"{name} ({cid}): restarting — {why}")
                self.client.restart_cluster(cid)
        except WorkspaceError as exc:
            if exc.invalid_state and info is self.known.get(name):
                # Not RUNNING any more since the caller read it: decide again from a fresh read.
                self.known.pop(name, None)
                return ClusterOutcome(name, cid, _READ_AGAIN)
            # INVALID_STATE: already restarting (an edit's restart just became visible).
            if not exc.invalid_state:
                return ClusterOutcome(name, cid, "failed", f"restart refused ({said(exc)})")
        watch = self._wait(name, cid, restart_from=before)
        if watch.outcome is not None:
            return watch.outcome
        assert watch.info is not None
        if self.fresh.stale(name, watch.info):
            # Judged by the restart we watched, not by the two services' clocks (skew or lag).
            self.console.info(
                f"{name}: restarted (observed), though its last_restarted_time "
                f"{_iso(last_start_ms(watch.info))} is not after the secret's last update "
                f"{_iso(self.fresh.secret_ms)} — the clusters and secrets services' clocks differ "
                "or the field lags; not restarting again"
            )
        self._ok(name, "RUNNING on the current configuration (restarted)")
        return ClusterOutcome(name, cid, "restarted")

    def _wait(self, name: str, cid: str, *, restart_from: int | None) -> _Watch:
        """Poll until RUNNING (and, after our restart, with the restart's effect seen)."""
        watch = _Watch()
        called = self.clock.monotonic()
        last_state = ""
        last_progress = called
        delay = 0.05  # dense first polls: the one after the restart finishes closes the window
        since: float | None = None  # the first look is the cluster's own read, at once
        while not self.stop.is_set():
            asked = self.clock.monotonic()
            info = self._look(name, cid, since, watch)
            # The next look needs a listing begun after this one ended: one begun while it was
            # in flight may be the very listing it just saw, and the wait would skip a round.
            since = self.clock.monotonic()
            if info is None:
                break
            if isinstance(info, ClusterOutcome):
                watch.outcome = info
                return watch
            state = str(info.get("state", ""))
            now = self.clock.monotonic()
            if state != "RUNNING":
                watch.saw_transition = True
            if state != last_state and last_state:
                self.console.info(f"{name}: {last_state} → {state} ({now - self.started:.1f}s)")
            last_state = state
            if state == "RUNNING":
                effect = watch.saw_transition or last_start_ms(info) != restart_from
                if restart_from is None or effect:
                    watch.info = info
                    return watch
                if now - called >= NO_EFFECT_GRACE_SECONDS:
                    watch.outcome = ClusterOutcome(
                        name,
                        cid,
                        "failed",
                        f"showed no sign of the restart after {now - called:.0f}s (still RUNNING, "
                        f"last_restarted_time {_iso(restart_from)} unchanged) — check its event log; "
                        "it was not restarted again",
                    )
                    return watch
            elif state in TERMINAL:
                watch.outcome = ClusterOutcome(
                    name, cid, "failed", f"went {state} while starting: {termination_text(info)}"
                )
                return watch
            if now >= self.deadline:
                watch.outcome = ClusterOutcome(
                    name, cid, "timeout", f"still {state} after the {self.timeout:.0f}s timeout (--timeout)"
                )
                return watch
            if now - last_progress >= PROGRESS_EVERY_SECONDS:
                self.console.info(f"{name}: still {state} ({now - self.started:.0f}s of {self.timeout:.0f}s)")
                last_progress = now
            # A shared listing makes frequent looks cheap: the one that sees the last cluster
            # running closes the window, so the interval stays short — counted from when this
            # look began, so a look's own round trip does not stretch the cadence.
            interval = min(delay, self.moving.spacing(now)) - (self.clock.monotonic() - asked)
            self.clock.wait(self.stop, max(0.0, min(interval, self.deadline - now)))
            delay *= 1.3
        watch.outcome = ClusterOutcome(name, cid, "failed", "interrupted")
        return watch

    def _look(self, name: str, cid: str, since: float | None, watch: _Watch) -> dict[str, Any] | ClusterOutcome | None:
        """The cluster as a shared listing of clusters in motion shows it (one call for all
        waiters, `databricks.moving`), else as its own read; None when stopped.

        The first look (`since` None) is its own read, made at once while the poll budget has
        a token free: a listing may be up to `moving.MOVING_POLL_SECONDS` away, and a short
        restart could begin and end unseen — with a lagging `last_restarted_time`, that
        restart would show no effect at all. When many clusters restart together the budget
        runs dry (50 first reads at 10/s: the last 5 s late); the others' first look is the
        next shared listing, begun after it — it shows a restart in motion as well. Every look
        is the cluster's own read once the listing showed no other cluster in motion: it costs
        what a listing does and says RUNNING one round trip sooner (no read to confirm).

        A cluster absent from a listing begun after its restart was answered has settled (or
        its restart shows no effect): the one read that says how is not a poll and takes no
        token of the poll budget (50 clusters settling within seconds would otherwise be
        confirmed at its rate, the last one closing the window; a short restart may end before
        any listing sees it). Once per wait; after it the cluster is polled within the budget,
        or a restart without visible effect would be read as fast as the listings come."""
        if since is None and self.polls.take() == 0:
            return self._get(name, cid)
        moving = None if watch.alone else self.moving.listed_after(self.clock.monotonic() if since is None else since)
        if moving is not None and cid in moving:
            info = moving[cid]
            if str(info.get("state")) == "RUNNING":  # a wide listing (`moving.WIDE_FROM`): no read to confirm it
                if watch.saw_transition and not watch.confirmed:
                    watch.confirmed = True
                    self.moving.settled()
                return info
            watch.alone = self.moving.in_motion(moving) == 1  # from now on its own read: same cost, one round trip less
            return info
        if moving is not None and not watch.confirmed:
            watch.confirmed = True
            self.moving.settled()
            return self._get(name, cid)
        if not self.polls.wait(self.stop):
            return None
        return self._get(name, cid)

    def _get(self, name: str, cid: str) -> dict[str, Any] | ClusterOutcome:
        try:
            with self.calls.call():
                return self.client.get_cluster(cid)
        except WorkspaceError as exc:
            if cluster_gone(exc):
                return ClusterOutcome(name, cid, "gone", "was deleted outside Terraform — run `provision apply`")
            return ClusterOutcome(name, cid, "failed", f"cannot read it ({said(exc)})")

    def _ok(self, name: str, what: str) -> None:
        self.console.ok(f"{name} is {what} ({self.clock.monotonic() - self.started:.1f}s)")


def _iso(ms: int | None) -> str:
    if not ms:
        return "—"
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="milliseconds")
