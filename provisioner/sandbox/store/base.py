"""The store's transaction machinery: one state under an exclusive flock.

The state lives in `<state_dir>/state.db` (store/records.py: one SQLite row per cluster, one
for the rest). Each operation runs under an exclusive `fcntl.flock` on
`<state_dir>/state.lock` and goes load → advance clocks → change → commit what changed, so the
emulator server, a second `provision` run and a test process all see one consistent state.
The database holds SAS tokens and secret values, so it is created 0600.

The domain mixins beside this module (dlz, clusters, secrets, connections, faults) each
own one part of the state document; `SandboxStore` in `__init__` composes them.
"""

from __future__ import annotations

import copy
import fcntl
import json
import os
import random
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from provisioner.sandbox.profile import FAST, current_profile
from provisioner.sandbox.profile import START_SECONDS_ENV as START_SECONDS_ENV  # re-exported
from provisioner.sandbox.store.records import ClusterTable, Database

State = dict[str, Any]

DEFAULT_CLUSTER_START_SECONDS = FAST.cluster_start_seconds

DEFAULT_FAULTS: dict[str, Any] = {
    "aep.status_429": 0,
    "aep.retry_after": None,
    "aep.status_5xx": 0,
    "aep.status_5xx_code": 503,
    "aep.latency_ms": 0,
    "aep.expired": 0,
    "aep.html": 0,
    "aep.connection_answer_lost": 0,  # count: a connection POST takes effect, then answers 504
    "workspace.fail": {},
    # endpoint -> file path: a call takes effect, then its answer waits until the file exists
    # (a barrier: "the workspace did it, the caller has not heard yet" — where a kill hurts most)
    "workspace.hold_answer": {},
    # "Amazon S3": the Connectors API answers like AEP on AWS (Adobe data-landing-zone.md).
    "aep.dlz_provider": None,
    # Lifecycle knobs (store/clusters.py, store/secrets.py, workspace_emulator.py):
    "workspace.secrets_clock_skew_seconds": 0,  # the secrets service's clock minus the clusters service's
    "workspace.restart_time_lag_seconds": 0,  # last_restarted_time shows the old value this long after a start
    "workspace.restart_fails": 0,  # count: the next clusters/restart ends TERMINATED (cloud launch failure)
    "workspace.status_429": 0,  # count of 429 answers (any endpoint), with Retry-After below
    "workspace.retry_after": 1,  # seconds, or None = header absent
    "workspace.status_5xx": 0,  # count of transient 5xx answers (any endpoint)
    "workspace.status_5xx_code": 503,
    # The lowest cluster level that may GET a cluster's ACL. Who may is not documented (the
    # Permissions API reference is silent); the UI shows the dialog to managers, so CAN_MANAGE
    # by default — a lower one lets tests prove the tool does not rely on either answer.
    "workspace.permissions_read_level": "CAN_MANAGE",
    # The workspace setting maxTokenLifetimeDays (store/tokens.py); None: not set (730 days apply).
    "workspace.max_token_lifetime_days": None,
}


class DatabricksError(Exception):
    """A Databricks REST error: the workspace emulator turns it into the JSON error body."""

    def __init__(self, status: int, error_code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message


def today() -> date:
    return datetime.now(UTC).date()


def now_ms() -> int:
    return int(time.time() * 1000)


def empty_state() -> State:
    return {
        "version": 1,
        "dlz": {},
        "revoked_tokens": 0,
        "workspaces": {},
        "connections": [],
        "faults": copy.deepcopy(DEFAULT_FAULTS),
    }


def workspace_state(state: State, key: str) -> dict[str, Any]:
    workspace: dict[str, Any] = state["workspaces"].setdefault(key, {"clusters": {}, "scopes": {}, "policies": {}})
    return workspace


class StoreBase:
    """The state file; every public method of the mixins is one locked transaction."""

    def __init__(self, state_dir: Path, cluster_start_seconds: float | None = None) -> None:
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.lock_path = self.state_dir / "state.lock"
        self._db = Database(self.state_dir, self._cluster_wake)
        self.path = self._db.path
        # The profile (provisioner/sandbox/profile.py) decides how long a (re)start takes;
        # an explicit value is exact (no jitter), for tests.
        profile = current_profile()
        self.cluster_start_seconds = profile.cluster_start_seconds
        self.cluster_start_jitter = profile.cluster_start_jitter
        if cluster_start_seconds is not None:
            self.cluster_start_seconds, self.cluster_start_jitter = cluster_start_seconds, 0.0

    def start_duration(self) -> float:
        """How long the (re)start beginning now takes: `cluster_start_seconds` ± the profile's jitter."""
        spread = self.cluster_start_jitter * self.cluster_start_seconds
        return self.cluster_start_seconds + (random.uniform(-spread, spread) if spread else 0.0)

    # ---- transaction machinery -------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[tuple[State, str | None, dict[str, ClusterTable]]]:
        """The state read under this process's lock and the file's (other processes), its clock
        advanced; what it was read from comes along for the write."""
        with self._db.locked():
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                state, text, tables = self._db.read(empty_state)
                self._advance_clock(state, time.time())
                yield state, text, tables
            finally:
                os.close(fd)  # closing the descriptor releases the flock

    @contextmanager
    def _txn(self) -> Iterator[State]:
        with self._locked() as (state, text, tables):
            yield state
            # Reached only without an exception: a failed operation leaves no half-change.
            self._db.write(state, text, tables)

    @contextmanager
    def _view(self) -> Iterator[State]:
        """A transaction for a reader of many clusters (listings): the clock's changes are
        committed before the reader runs, and nothing the reader does is written — so the
        clusters it reads are not serialised again only to learn they did not change."""
        with self._locked() as (state, text, tables):
            self._db.write(state, text, tables)
            yield state

    def reset(self) -> None:
        """Forget everything (landing zones, workspaces, connections, knobs)."""
        with self._txn() as state:
            state.clear()
            state.update(empty_state())

    def snapshot(self) -> State:
        """A deep copy of the whole state (secrets included: for tests, not for output)."""
        with self._txn() as state:
            copied: State = json.loads(json.dumps(state, default=dict))
            return copied

    def _advance_clock(self, state: State, now: float) -> None:
        """Apply time-based transitions that are due (clusters override this)."""

    def _cluster_wake(self, cluster: Mapping[str, Any]) -> float | None:
        """When `_advance_clock` may next change this cluster (None: never by itself); clusters override this."""
        return None
