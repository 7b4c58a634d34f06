"""How fast the sandbox world is: `PROVISION_SANDBOX_PROFILE=fast` (default) or `realistic`.

`fast` answers at once and (re)starts a cluster in 0.3 s, so tests run quickly. `realistic`
gives calls and restarts the proportions of a real workspace, so that benchmarks measure
what a user with many clusters meets (docs/sandbox.md, "Profiles", gives the sources):

- workspace REST calls 100-300 ms, IMS and AEP calls 200-500 ms (uniform per request) —
  measured-order figures for a CI runner calling a control plane in its region
  (assumption, the order issue 11 states; neither Databricks nor Adobe publish latencies);
- cluster start/restart 20 s ± 10 %: a real classic cluster takes minutes (VMs are
  acquired, then Spark starts; the SDK's `*_and_wait` helpers wait up to 20 minutes,
  `databricks/sdk/service/compute.py`, and Databricks sells pools "to reduce cluster start
  times"). ~5 minutes scaled by 1/15 so a 50-cluster rotation bench finishes in seconds.
  Calls are *not* scaled: the ratio call-latency : restart is 1:100 instead of ~1:1500,
  so any per-call overhead inside the revocation window weighs ~15x more here than on a
  real workspace — a window within 1.05x of its floor here is within ~1.003x there.

Independent of the profile, `PROVISION_SANDBOX_RATE_LIMIT=<requests/s>` makes the workspace
emulator throttle each workspace with 429 + `Retry-After` (off when unset or 0), and
`PROVISION_SANDBOX_CLUSTER_START_SECONDS` overrides the start time (tests), and
`PROVISION_SANDBOX_LATENCY_SEED` draws the profile's waits reproducibly (benchmarks' pairs).

The profile is read by the process that runs the emulators (the `provision` command, or a
test/bench process holding a `Sandbox`), so set it in that process's environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from provisioner.errors import ProvisionError

PROFILE_ENV = "PROVISION_SANDBOX_PROFILE"
RATE_LIMIT_ENV = "PROVISION_SANDBOX_RATE_LIMIT"
START_SECONDS_ENV = "PROVISION_SANDBOX_CLUSTER_START_SECONDS"
SAS_PROPAGATION_ENV = "PROVISION_SANDBOX_SAS_PROPAGATION_SECONDS"
TRACE_ENV = "PROVISION_SANDBOX_TRACE"  # a file: one JSON line per request (server.py)
LATENCY_SEED_ENV = "PROVISION_SANDBOX_LATENCY_SEED"  # reproducible waits per client and request (server.py)


@dataclass(frozen=True)
class Profile:
    name: str
    workspace_latency: tuple[float, float]  # seconds, uniform per request
    aep_latency: tuple[float, float]  # IMS, Connectors, Flow Service
    cluster_start_seconds: float  # PENDING/RESTARTING → RUNNING, also resize and terminate
    cluster_start_jitter: float  # ± fraction, drawn per (re)start
    rate_limit_rps: float | None = None  # requests per second per workspace; None: no limit
    # A new token's stored access policy "may take up to 30 seconds to take effect" (Azure REST,
    # Set Container ACL): the blob route refuses the current token this long after it was
    # issued. Realistic takes 10 s: its clusters restart for 20 s, so a rotation's on-cluster
    # probe never meets it, while `verify` right after a refresh does.
    sas_propagation_seconds: float = 0.0


FAST = Profile("fast", (0.0, 0.0), (0.0, 0.0), 0.3, 0.0)
REALISTIC = Profile("realistic", (0.1, 0.3), (0.2, 0.5), 20.0, 0.1, None, 10.0)
PROFILES = {p.name: p for p in (FAST, REALISTIC)}


def current_profile(environ: Mapping[str, str] | None = None) -> Profile:
    """The profile the environment selects, with its overrides applied."""
    environ = os.environ if environ is None else environ
    name = environ.get(PROFILE_ENV) or FAST.name
    if name not in PROFILES:
        raise ProvisionError(f"{PROFILE_ENV}={name!r} is not a sandbox profile — use one of: {', '.join(PROFILES)}")
    profile = PROFILES[name]
    start = _seconds(environ, START_SECONDS_ENV)
    rate = _seconds(environ, RATE_LIMIT_ENV)
    propagation = _seconds(environ, SAS_PROPAGATION_ENV)
    return Profile(
        profile.name,
        profile.workspace_latency,
        profile.aep_latency,
        profile.cluster_start_seconds if start is None else start,
        profile.cluster_start_jitter if start is None else 0.0,  # an explicit start time is exact
        profile.rate_limit_rps if rate is None else (rate or None),  # 0 turns the limit off
        profile.sas_propagation_seconds if propagation is None else propagation,
    )


def _seconds(environ: Mapping[str, str], name: str) -> float | None:
    raw = environ.get(name)
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also NaN
        raise ProvisionError(f"{name}={raw!r} is not a number >= 0 — set a number such as 0.3, or unset it")
    return value
