"""One `clusters/list` call answers for every cluster a command is waiting on.

Waiting on N restarting clusters with a `clusters/get` each per poll costs N calls a round;
under a request budget (`parallel.DEFAULT_POLL_RATE`) the last cluster to run is seen up to
N/budget seconds after it does — inside a rotation's revocation window. The clusters list
filtered to the states of a cluster in motion (`filter_by.cluster_states`, databricks-sdk
`service/compute.py` `ListClustersFilterBy`; each item a whole `ClusterDetails`, as
`clusters/get` answers it) answers for all of them at once: a waited cluster in the listing
is still moving and the item says how; one absent from it has settled (or has not begun to
move yet) and only that one needs a `clusters/get`.

Listings are shared: a waiter asks for one that began after its previous look ended; whoever asks
first makes the call, the others wait for its answer. They take a token from the caller's
budget like any poll and are spaced a tenth of the time waited so far (at least 50 ms), at
most `MOVING_POLL_SECONDS`: a short start is seen soon after it ends, and a long one — minutes
on a real workspace — costs two listings a second, whatever the number of clusters.

Clusters restarted together settle together, and the listing that sees the last of them
closes a rotation's revocation window. So once a waited cluster has settled (`settled`), the
others are due: for `SETTLING_SECONDS` after each, listings are at most `SETTLING_POLL_SECONDS`
apart — the last cluster is seen ~0.15 s sooner on average (up to 0.3 s). The price on a real
workspace, where restarts take minutes and 50 clusters settle over a minute or two: ~3 more
listings a second for that minute or two, a few hundred small calls (each lists only the
clusters still moving), within the poll budget; a straggler minutes late costs nothing more
once `SETTLING_SECONDS` have passed without another cluster settling.

Many clusters (`WIDE_FROM` waits or more) settle faster than they can be read one by one:
200 clusters restarted at 20 requests/s end over ~14 s, 20 a second at the peak — a read
each plus the listings asked for more than the 20 requests a second the workspace allows,
and the last cluster was seen ~2 s after it ran. So their listings include RUNNING (`wide`):
a waited cluster listed RUNNING needs no read, and a look costs its pages (100 clusters
each) whatever the number settling. A cluster absent from such a listing has stopped (or is
gone) and is read. If other clusters make the running list longer than twice the waits
(a workspace where many run), the listings go back to clusters in motion and reads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from provisioner.clock import Clock
from provisioner.databricks.ratelimit import TokenBucket
from provisioner.databricks.workspace import WorkspaceClient, WorkspaceError

MOVING_STATES = ("PENDING", "RESTARTING", "RESIZING", "TERMINATING")
WIDE_FROM = 20
MOVING_POLL_SECONDS = 0.5
SETTLING_POLL_SECONDS = 0.2
SETTLING_SECONDS = 5.0


class MovingClusters:
    def __init__(
        self,
        client: WorkspaceClient,
        call: Callable[..., Any],  # runs a workspace call within the caller's bound on calls in flight
        polls: TokenBucket,
        stop: threading.Event,
        clock: Clock,
    ) -> None:
        self._client = client
        self._clock = clock
        self._call = call
        self._polls = polls
        self._stop = stop
        self._cond = threading.Condition()
        self._busy = False
        self._began = float("-inf")  # when the latest listing's call began (monotonic)
        self._moving: dict[str, dict[str, Any]] | None = None
        self._created = clock.monotonic()
        self._settled = float("-inf")  # when a waited cluster last left the listing
        self.wide = False  # listings show RUNNING clusters too (module docstring)
        self._waits = 0

    def expect(self, waits: int) -> None:
        """How many clusters will be waited on: from `WIDE_FROM`, listings are wide."""
        self._waits = waits
        self.wide = waits >= WIDE_FROM

    def in_motion(self, listed: dict[str, dict[str, Any]]) -> int:
        return sum(str(c.get("state")) in MOVING_STATES for c in listed.values())

    def settled(self) -> None:
        """A waited cluster has left the listing: those restarted with it are due."""
        self._settled = self._clock.monotonic()

    def spacing(self, now: float) -> float:
        """Seconds between two listings now (and between a waiter's looks: asking more often gains nothing)."""
        settling = now - self._settled < SETTLING_SECONDS
        return min(SETTLING_POLL_SECONDS if settling else MOVING_POLL_SECONDS, max(0.05, 0.1 * (now - self._created)))

    def listed_after(self, since: float) -> dict[str, dict[str, Any]] | None:
        """The clusters in motion (and running, when `wide`) by id, from a listing that began after `since` (monotonic).

        None when that listing failed or the wait was stopped: the caller reads the cluster
        itself (a listing is an optimisation, never the only way to learn a state).
        """
        with self._cond:
            while self._began <= since:
                if self._stop.is_set():
                    return None
                if not self._busy:
                    self._busy = True
                    break
                self._cond.wait(0.25)
            else:
                return self._moving
        began, moving = self._clock.monotonic(), None
        try:
            self._clock.wait(self._stop, max(0.0, self._began + self.spacing(began) - began))
            if not self._stop.is_set() and self._polls.wait(self._stop):
                began = self._clock.monotonic()
                wide = self.wide
                states = (*MOVING_STATES, "RUNNING") if wide else MOVING_STATES
                listed: list[dict[str, Any]] = self._call(lambda: self._client.list_clusters(states=states))
                moving = {str(c.get("cluster_id")): c for c in listed}
                if wide and len(moving) - self.in_motion(moving) > 2 * self._waits:
                    self.wide = False  # others' running clusters cost more pages than the reads saved
        except WorkspaceError:
            moving = None
        finally:
            with self._cond:
                self._busy = False
                self._began, self._moving = began, moving
                self._cond.notify_all()
        return moving
